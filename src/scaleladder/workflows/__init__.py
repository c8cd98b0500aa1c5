"""scaleladder.workflows: what runs above the rungs and below the ladders.

Dataset generation (:mod:`.generate`: structure builders, deduplication, single points of any
engine as resumable pipeline stages on any executor).  Workflows may import the rungs and the
coupling layer; rungs never import workflows (an import-linter contract).
"""
from .generate import (
    ENGINES,
    DeduplicationReport,
    GenerationReport,
    deduplicate,
    engine_spec,
    ev_series,
    generate_dataset,
    md_snapshots,
    rattled,
    run_generation,
    slabs,
    strain_set,
    structures_equivalent,
    vacancies,
)

__all__ = ["ev_series", "strain_set", "rattled", "slabs", "vacancies", "md_snapshots",
           "deduplicate", "DeduplicationReport", "structures_equivalent", "engine_spec",
           "generate_dataset", "run_generation", "GenerationReport", "ENGINES"]

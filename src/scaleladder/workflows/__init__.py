"""scaleladder.workflows: what runs above the rungs and below the ladders.

Dataset generation (:mod:`.generate`: structure builders, deduplication, single points of any
engine as resumable pipeline stages on any executor), the one calculator registry
(:mod:`.calculators`) and the flagship's silicon configuration sets (:mod:`.silicon`).  Workflows may import the rungs and the
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

from .silicon import (
    FLAGSHIP_CALC_PARAMS,
    STRAIN_PATTERNS,
    silicon_configurations,
    silicon_ev_set,
    silicon_heldout_set,
    silicon_rattle_set,
    silicon_strain_set,
)

__all__ = ["FLAGSHIP_CALC_PARAMS", "STRAIN_PATTERNS", "silicon_configurations", "silicon_ev_set",
           "silicon_heldout_set", "silicon_rattle_set", "silicon_strain_set", "ev_series", "strain_set", "rattled", "slabs", "vacancies", "md_snapshots",
           "deduplicate", "DeduplicationReport", "structures_equivalent", "engine_spec",
           "generate_dataset", "run_generation", "GenerationReport", "ENGINES"]

"""A failed SCF inside the flagship's stages: a clear error, and a store left consistent."""
from __future__ import annotations

import numpy as np
import pytest

from scaleladder.core.errors import ConvergenceError
from scaleladder.core.pipeline import Runner
from scaleladder.core.store import Store
from scaleladder.ladders import silicon_fracture as sf


def _structure(name, scale=1.0):
    from ase.build import bulk

    from scaleladder.handoffs import Structure

    at = bulk("Si", "diamond", a=5.43 * scale)
    return Structure.from_atoms(at, name=name, properties=["energy"])


CHEAP = {"xc": "LDA", "pseudo": "gth-pade", "basis": "gth-szv", "kpts_scaled": [[0.25, 0.25, 0.25]],
         "ke_cutoff": 8.0, "conv_tol": 1e-6, "symmetry": False}


def test_failed_scf_names_configuration_and_keeps_store(tmp_path):
    store = Store(tmp_path / "store")
    ok = sf.dft_configuration.bind(structure=_structure("ev_ok"), calc=dict(CHEAP, max_cycle=50))
    bad = sf.dft_configuration.bind(structure=_structure("ev_bad", 1.02), calc=dict(CHEAP, max_cycle=1))
    runner = Runner(store, progress=False)
    with pytest.raises(ConvergenceError) as exc:
        runner.run({"ok": ok, "bad": bad})
    msg = str(exc.value)
    assert "ev_bad" in msg and "max_cycle" in msg
    # the finished stage is stored and readable, the failed one left nothing behind
    store2 = Store(tmp_path / "store")
    assert store2.has(ok.key) and not store2.has(bad.key)
    assert np.isfinite(store2.get(ok.key)["energy"])
    # a rerun with a working setting reuses the finished stage and computes only the other
    bad_fixed = sf.dft_configuration.bind(structure=_structure("ev_bad", 1.02), calc=dict(CHEAP, max_cycle=50))
    runner = Runner(store2, progress=False)
    runner.run({"ok": ok, "bad": bad_fixed})
    assert runner.stats.reused == 1 and runner.stats.computed == 1

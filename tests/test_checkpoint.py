"""The one checkpoint format (core.checkpoint) and every engine's use of it (issue 10, item 1).

Round trips are exact; a corrupted, truncated or foreign checkpoint is refused with a clear error
naming the file, by the container and by every engine that reads one.
"""
from __future__ import annotations

import io

import numpy as np
import pytest

from scaleladder.core.checkpoint import CheckpointError, read_checkpoint, write_checkpoint
from scaleladder.core.errors import InputError


def _state():
    rng = np.random.default_rng(3)
    return {"positions": rng.standard_normal((7, 3)), "step": 41, "time": 0.1 + 0.2,
            "rng": rng.bit_generator.state, "ids": np.arange(7, dtype=np.int64),
            "nested": {"a": [1.0, 2.5e-300, float("inf")], "b": None, "t": (1, 2)}}


def _tamper(path, part="arrays_npz"):
    """Flip one byte of a part's content, keeping the header (and its recorded sha256)."""
    with np.load(path, allow_pickle=False) as z:
        members = {k: np.array(z[k]) for k in z.files}
    raw = members[part].copy()
    raw[len(raw) // 2] ^= 0xFF
    members[part] = raw
    buf = io.BytesIO()
    np.savez(buf, **members)
    path.write_bytes(buf.getvalue())


def test_round_trip_is_exact_and_atomic(tmp_path):
    s = _state()
    p = write_checkpoint(tmp_path / "sub" / "a.npz", s, kind="test")
    back = read_checkpoint(p, kind="test")
    np.testing.assert_array_equal(back["positions"], s["positions"])
    assert back["positions"].tobytes() == s["positions"].tobytes()
    assert back["time"] == s["time"] and back["step"] == 41 and back["nested"] == s["nested"]
    assert back["rng"] == s["rng"]
    assert [f.name for f in (tmp_path / "sub").iterdir()] == ["a.npz"]   # no temp debris


def test_corrupt_truncated_foreign_and_missing_checkpoints_are_refused(tmp_path):
    p = write_checkpoint(tmp_path / "a.npz", _state(), kind="test")
    with pytest.raises(CheckpointError, match="a test2 checkpoint"):
        read_checkpoint(p, kind="test2")
    _tamper(p)
    with pytest.raises(CheckpointError, match="corrupt") as e:
        read_checkpoint(p, kind="test")
    assert str(p) in str(e.value) and isinstance(e.value, InputError)
    raw = write_checkpoint(tmp_path / "b.npz", _state(), kind="test").read_bytes()
    (tmp_path / "b.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="readable"):
        read_checkpoint(tmp_path / "b.npz", kind="test")
    np.savez(tmp_path / "c.npz", x=np.zeros(3))               # some other .npz
    with pytest.raises(CheckpointError):
        read_checkpoint(tmp_path / "c.npz", kind="test")
    with pytest.raises(CheckpointError, match="existing"):
        read_checkpoint(tmp_path / "none.npz", kind="test")


def test_every_engine_refuses_a_corrupted_checkpoint(tmp_path):
    from ase.build import bulk

    from scaleladder.atomistic import LennardJones, run_md
    from scaleladder.atomistic.md import read_checkpoint as read_md
    from scaleladder.mesoscale import kmc, phasefield as pf

    # MD
    atoms = bulk("Ar", "fcc", a=5.26, cubic=True).repeat(2)
    ck = tmp_path / "md.npz"
    run_md(atoms, LennardJones(epsilon=0.0104, sigma=3.4, rc=8.0), steps=4, timestep_fs=2.0,
           checkpoint=ck, checkpoint_every=2, seed=1)
    read_md(ck)
    _tamper(ck)
    with pytest.raises(InputError, match="corrupt"):
        read_md(ck)
    # phase field
    grid = pf.SpectralGrid((32, 32), 1.0)
    model = pf.AllenCahn(0.5, 1.0, 1.0)
    ck = tmp_path / "pf.npz"
    pf.run_phasefield(model, grid, pf.circle(grid, 10.0, 4.0), 0.1, 4, checkpoint=ck,
                      checkpoint_every=2)
    pf.read_checkpoint(ck)
    import shutil

    shutil.copy(ck, tmp_path / "pf-intact.npz")
    _tamper(ck)
    with pytest.raises(InputError, match="corrupt"):
        pf.resume_phasefield(ck, steps=2)
    ck = tmp_path / "pf-intact.npz"
    # KMC: a foreign file, and another engine's run, under its name
    write_checkpoint(tmp_path / "kmc.npz", {"x": 1}, kind="md")
    with pytest.raises(InputError, match="simulation"):
        kmc.read_checkpoint(tmp_path / "kmc.npz")
    with pytest.raises(InputError, match="scaleladder.kmc/2 run"):
        kmc.read_checkpoint(tmp_path / "pf-intact.npz")

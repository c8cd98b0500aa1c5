"""NEB images spread over a Dask cluster (issue 10, item 4): the band of the defects ladder's
migration stage, run by a Runner on a two-worker cluster, evaluates its interior images as tasks
of the cluster and gives the in-process barrier."""
from __future__ import annotations

import pytest

from scaleladder.core.pipeline import Runner, on_cluster, parallel_map
from scaleladder.core.store import Store


def _square(x):
    return x * x


def test_parallel_map_outside_a_cluster_is_serial():
    assert not on_cluster()
    assert parallel_map(_square, [1, 2, 3]) == ([1, 4, 9], "serial")


@pytest.mark.slow
def test_neb_images_run_as_tasks_of_the_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    from scaleladder.ladders import defects

    settings = defects.LADDER.resolve({"finite_size": False})
    nodes = defects.build(settings)
    local = Runner(Store(tmp_path / "local"), progress=False).run(
        {"migration": nodes["migration"]})["migration"]
    assert local.provenance["image_evaluation"] == {"where": "serial", "processes": 1}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        spread = Runner(Store(tmp_path / "dask"), executor=client, progress=False).run(
            {"migration": nodes["migration"]})["migration"]
    ev = spread.provenance["image_evaluation"]
    assert ev["where"] == "dask" and ev["processes"] == 2      # both workers evaluated images
    # each image has its own calculator (own neighbour list): the same band to round-off
    assert spread.value.value == pytest.approx(local.value.value, abs=1e-6)
    assert spread.value.value == pytest.approx(0.517, abs=2e-3)       # SW Si, 2x2x2 (63 atoms)
    assert spread.saddle_index == local.saddle_index

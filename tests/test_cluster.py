"""Multi-node on one machine: the session's cluster is a head and a worker node (conftest.py).
Featurize and training spread over both, and a node killed in the middle of featurize loses
nothing: every trailer ends in exactly one table, at the latest after one rerun that redoes
no finished trailer."""
import os
import signal
import threading
import time

import pandas as pd
import pytest

from tests.conftest import TINY

pytestmark = pytest.mark.slow


def _alive_nodes() -> set[str]:
    import ray
    return {n["NodeID"] for n in ray.nodes() if n["Alive"]}


def test_featurize_ran_on_both_nodes(store, ray_head):
    _, summary = store
    nodes = summary["nodes"]
    assert sum(nodes["decode"].values()) == sum(nodes["embed"].values()) == 11
    assert len(_alive_nodes()) == 2
    assert set(nodes["decode"]) | set(nodes["embed"]) == _alive_nodes()


def test_training_workers_ran_on_both_nodes(trained, mlflow_server):
    import mlflow
    tags = mlflow.MlflowClient(mlflow_server.url).get_run(trained["run_id"]).data.tags
    assert {tags["ray.worker0.node"], tags["ray.worker1.node"]} == _alive_nodes()


def _ids(path) -> list[str]:
    return pd.read_parquet(path, columns=["trailer_id"]).trailer_id.tolist() if path.exists() else []


def test_node_killed_mid_featurize_loses_nothing(samples, ray_head, tmp_path):
    from ray.util.state import list_tasks

    from cluster.local import start_ray_worker
    from ctt.config import load_config
    from featurize import store
    from featurize.pipeline import run_featurize
    victim = start_ray_worker(ray_head, tmp_path / "victim", num_cpus=2, name="victim",
                              object_store_memory=1024**3)
    assert victim.node_id in _alive_nodes()
    manifest, out = str(samples / "manifest.csv"), tmp_path / "store"
    cfg = load_config(None, TINY + ["featurize.trailers_per_batch=2"]).featurize
    first: dict = {}

    def featurize():
        try:
            first["summary"] = run_featurize(manifest, str(out), cfg)
        except Exception as e:          # a clean failure is allowed: the rerun below must finish the job
            first["error"] = e
    th = threading.Thread(target=featurize)
    th.start()
    deadline, running = time.time() + 120, []
    while not running and th.is_alive() and time.time() < deadline:
        running = list_tasks(address=ray_head.gcs_address, raise_on_missing_output=False,
                             filters=[("node_id", "=", victim.node_id), ("state", "=", "RUNNING")])
        time.sleep(0.2)
    assert running, "no work was scheduled on the victim node"
    os.killpg(victim.pid, signal.SIGKILL)                        # the node dies with its raylet and workers
    th.join(timeout=420)
    assert not th.is_alive(), "featurize hung after the node died"
    deadline = time.time() + 30
    while victim.node_id in _alive_nodes() and time.time() < deadline:
        time.sleep(0.5)
    assert victim.node_id not in _alive_nodes()

    before = set(_ids(out)) | set(_ids(out / "_errors"))
    if "summary" in first:                                     # tasks were retried: all accounted for at once
        assert first["summary"]["done"] + first["summary"]["failed"] == 11, first["summary"]
    again = run_featurize(manifest, str(out), cfg)
    assert again["skipped"] == len(before)                      # finished trailers are not redone
    assert again["done"] + again["failed"] == 11 - len(before)
    done, failed = _ids(out), _ids(out / "_errors")
    assert len(done) == len(set(done)) == 10 and failed == ["broken1"]
    all_ids = set(pd.read_csv(manifest).trailer_id)
    assert set(done) | set(failed) == all_ids and store.done_ids(str(out)) == set(done)
    print(f"node killed while {len(running)} task(s) ran on it; first run: "
          f"{first.get('summary') or repr(first.get('error'))[:300]}; rerun: {again}")


def test_stopping_a_node_kills_its_workers_that_outlive_the_raylet(tmp_path):
    """A worker hung past its raylet's death (own process group, RAY_RAYLET_PID set) is killed
    with the node; a process of another raylet is left alone."""
    import shutil
    import subprocess

    from cluster.local import stop_group
    raylet = tmp_path / "raylet"
    raylet.symlink_to(shutil.which("sleep"))                   # its process name is "raylet"
    node = subprocess.Popen([str(raylet), "60"], start_new_session=True)
    worker = subprocess.Popen(["sleep", "60"], start_new_session=True, env=os.environ | {"RAY_RAYLET_PID": str(node.pid)})
    other = subprocess.Popen(["sleep", "60"], start_new_session=True, env=os.environ | {"RAY_RAYLET_PID": "1"})
    try:
        time.sleep(0.2)                                       # both have exec'd
        stop_group(node.pid)
        node.wait(timeout=5)                                  # (reaped by stop_group already)
        assert worker.wait(timeout=5) == -signal.SIGKILL
        assert other.poll() is None
    finally:
        for p in (node, worker, other):
            p.kill()
            p.wait()

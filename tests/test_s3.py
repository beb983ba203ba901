"""Manifest, videos and feature store on S3 (a real moto server), through s3fs."""
import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import s3fs

from tests.conftest import TINY

pytestmark = pytest.mark.slow


def test_featurize_and_train_from_s3(samples, ray_head, s3_server, s3_proxy, mlflow_server, monkeypatch, tmp_path):
    """With every 5th S3 request failing once (503 SlowDown, as S3 does under load): every
    client (the driver, decode tasks, embedder actors, Ray Train's readers) retries."""
    import mlflow

    from ctt.config import load_config
    from ctt.experiment.distributed.train_driver import run_training
    from featurize import store
    from featurize.pipeline import run_featurize
    fs = s3fs.S3FileSystem()
    fs.mkdir("ctt-data")
    fs.put(str(samples) + "/", "ctt-data/samples/", recursive=True)
    assert fs.exists("ctt-data/samples/manifest.csv") and fs.exists("ctt-data/samples/videos/broken.mp4")

    cfg = load_config(None, TINY)
    failed_before = s3_proxy.failed
    monkeypatch.setattr(s3_proxy, "fail_every", 5)
    summary = run_featurize("s3://ctt-data/samples/manifest.csv", "s3://ctt-data/store", cfg.featurize)
    assert (summary["done"], summary["failed"]) == (10, 1)
    df = pd.read_parquet("s3://ctt-data/store", storage_options={"endpoint_url": s3_server})
    assert len(df) == 10 and df.frames.map(len).min() >= 1
    errors = pd.read_parquet("s3://ctt-data/store/_errors", storage_options={"endpoint_url": s3_server})
    assert errors.trailer_id.tolist() == ["broken1"]
    assert not [p for p in fs.find("ctt-data/store/_tmp")]                # nothing left half-written
    assert store.done_ids("s3://ctt-data/store") == set(df.trailer_id)

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    local_results = Path("~/ray_results").expanduser()
    before = set(local_results.rglob("*")) if local_results.exists() else set()
    train_cfg = load_config(None, ["train.max_epochs=2", "tracking.experiment=s3", "model.name=ctt-b",
                                   "resources.placement_strategy=STRICT_SPREAD",      # one worker per node
                                   "tracking.storage_path=s3://ctt-data/ray-train"])
    result = run_training("s3://ctt-data/store", train_cfg)
    run = mlflow.MlflowClient(mlflow_server.url).get_run(result["run_id"])
    assert run.data.params["features"] == "s3://ctt-data/store" and "test_auprc_micro" in run.data.metrics
    assert s3_proxy.failed - failed_before >= 10, (s3_proxy.failed, s3_proxy.requests)   # faults were injected
    # Checkpoints went to the bucket, both workers' nodes wrote through it, and the driver read
    # the best one back from there: nothing of the run is on local disk.
    assert result["checkpoint"].startswith("ctt-data/ray-train/ctt_" + result["run_id"][:12])
    saved = [p for p in fs.find("ctt-data/ray-train") if p.endswith("/state.pt")]
    assert saved and all(p.startswith("ctt-data/ray-train/ctt_" + result["run_id"][:12]) for p in saved)
    assert len({run.data.tags[f"ray.worker{r}.node"] for r in (0, 1)}) == 2
    new = set(local_results.rglob("*")) - before if local_results.exists() else set()
    assert not [p for p in new if result["run_id"][:12] in str(p)], new


def test_multi_node_training_needs_shared_storage(ray_head, mlflow_server, monkeypatch):
    """No storage set on a two-node cluster: the run stops before anything is trained or logged."""
    from ctt.experiment.distributed.checkpoints import StorageError, train_storage
    with pytest.raises(StorageError, match=r"the cluster has \d+ nodes: set tracking.storage_path"):
        train_storage("")
    path, fs = train_storage("s3://ctt-data/ray-train")
    assert path == "ctt-data/ray-train" and fs is not None
    with tempfile.TemporaryDirectory() as shared:          # every node of this machine sees it
        assert train_storage(shared) == (shared, None) and not os.listdir(shared)

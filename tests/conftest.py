"""Shared fixtures: sample trailers, and real servers on 127.0.0.1 started (and stopped) here."""
from __future__ import annotations

import glob
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from cluster import env

env.apply()                     # before Ray or MLflow is imported anywhere in the session
os.environ.pop("RAY_ADDRESS", None)
os.environ.pop("MLFLOW_TRACKING_URI", None)

# the films cut several times into the medium store: (genres, the split of each cut)
RECUT_FILMS = [(["action"], ["train", "test", "val"]), (["horror", "thriller"], ["train", "train", "train"]),
               (["comedy", "romance"], ["train", "test"]), (["drama"], ["val", "val"])]
TINY = ["featurize.backbone.name=resnet18", "featurize.backbone.weights=none", "featurize.backbone.batch_size=16"]


@pytest.fixture(scope="session")
def samples(tmp_path_factory) -> Path:
    """10 synthetic trailers (all three splits) plus one file that is not a video."""
    from featurize.sample_trailers import SampleSpec, make_samples
    out = tmp_path_factory.mktemp("samples")
    make_samples(out, 10, seed=3, spec=SampleSpec(min_seconds=4, max_seconds=6), workers=2)
    (out / "videos" / "broken.mp4").write_text("this is not a video")
    with open(out / "manifest.csv", "a") as fh:
        fh.write("broken1,videos/broken.mp4,drama,train\n")
    return out


@pytest.fixture(scope="session")
def s3_proxy(tmp_path_factory):
    """A moto S3 server on 127.0.0.1 behind a proxy that can inject transient faults
    (tests/flaky_s3.py). The proxy's endpoint and test credentials go into the environment
    before the Ray nodes start, so their workers reach S3 through it the way cluster nodes would."""
    import subprocess
    import sys
    import time
    import urllib.request

    from cluster.env import free_port
    from cluster.local import stop_group
    from tests.flaky_s3 import FlakyS3Proxy
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    proc = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for _ in range(100):
        try:
            opener.open(url, timeout=1)
            break
        except Exception:
            time.sleep(0.2)
    proxy = FlakyS3Proxy(url)
    env = {"AWS_ENDPOINT_URL": proxy.url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    os.environ.update(env)
    yield proxy
    proxy.stop()
    stop_group(proc.pid)
    for k in env:
        os.environ.pop(k, None)


@pytest.fixture(scope="session")
def s3_server(s3_proxy) -> str:
    """The S3 endpoint every client of the session uses (the proxy in front of moto)."""
    return s3_proxy.url


# Node failures are noticed in about 3 s instead of 15 (the GCS health check of each raylet).
FAST_HEALTH = {"RAY_health_check_period_ms": "1000", "RAY_health_check_timeout_ms": "1000",
               "RAY_health_check_failure_threshold": "3"}


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory, s3_server):
    """A real two-node Ray cluster on 127.0.0.1, started with `ray start`: a head and a worker
    node of 1 CPU each, so every featurize and training test runs across nodes. This process
    joins it as a driver."""
    import ray

    from cluster.local import start_ray_head, start_ray_worker
    state = tmp_path_factory.mktemp("ray_head")
    head = start_ray_head(state, num_cpus=1, object_store_memory=2 * 1024**3, extra_env=FAST_HEALTH)
    try:
        worker = start_ray_worker(head, state, num_cpus=1, object_store_memory=2 * 1024**3)
    except Exception:
        head.stop()
        raise
    ray.init(address=head.gcs_address)
    yield head
    ray.shutdown()
    worker.stop()
    head.stop()
    shutil.rmtree(f"/tmp/ray_ctt_{head.gcs_address.rsplit(':', 1)[1]}", ignore_errors=True)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    from cluster.local import start_mlflow
    srv = start_mlflow(tmp_path_factory.mktemp("mlflow"))
    yield srv
    srv.stop()


# Chromium from the system (make browser), started as a machine with no network beyond loopback
# needs: without the background-networking flags it keeps dialling out and is refused.
CHROMIUM = os.environ.get("CTT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium driven by Playwright, one for the session."""
    from playwright.sync_api import sync_playwright
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make browser` (or set CTT_CHROMIUM)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def store(samples, ray_head, tmp_path_factory) -> tuple[Path, dict]:
    """The sample trailers featurized once on the Ray head (tiny backbone)."""
    from ctt.config import load_config
    from featurize.pipeline import run_featurize
    out = tmp_path_factory.mktemp("store") / "store"
    cfg = load_config(None, TINY + ["featurize.trailers_per_batch=4"])
    summary = run_featurize(str(samples / "manifest.csv"), str(out), cfg.featurize)
    return out, summary


@pytest.fixture(scope="session")
def medium_store(ray_head, tmp_path_factory) -> Path:
    """60 short synthetic trailers, one test trailer with no audio track, and 10 cuts of 4 films
    (RECUT_FILMS, two of them across splits), featurized once: enough for every method of the
    paper to learn something and be compared. The dedup job has run on it (STORE/_dedup), so
    the runs trained on it record its leakage."""
    from ctt.config import load_config
    from ctt.experiment.dedup_run import find_near_duplicates
    from featurize.pipeline import run_featurize
    from featurize.sample_cuts import make_cuts
    from featurize.sample_trailers import SampleSpec, make_samples, render_trailer
    root = tmp_path_factory.mktemp("medium")
    spec = SampleSpec(min_seconds=3, max_seconds=5)
    make_samples(root, 60, seed=11, spec=spec, workers=2)
    render_trailer(root / "videos" / "mute.mp4", ["horror"], seed=5,
                   spec=SampleSpec(min_seconds=3, max_seconds=4, audio=False))
    cuts = make_cuts(root, [genres for genres, _ in RECUT_FILMS], [len(s) for _, s in RECUT_FILMS], seed=2, spec=spec,
                     film_shots=6)
    splits = [s for _, film in RECUT_FILMS for s in film]
    with open(root / "manifest.csv", "a") as fh:
        fh.write("mute1,videos/mute.mp4,horror,test\n")
        for row, split in zip(cuts.itertuples(), splits):
            fh.write(f"{row.trailer_id},{row.path},{row.genres},{split}\n")
    out = root / "store"
    cfg = load_config(None, TINY + ["featurize.trailers_per_batch=8"])
    summary = run_featurize(str(root / "manifest.csv"), str(out), cfg.featurize)
    assert summary["done"] == 71, summary
    find_near_duplicates(str(out), load_config())
    return out


@pytest.fixture(scope="session")
def trained(store, mlflow_server, tmp_path_factory) -> dict:
    """CTT-MMC-C trained 2 epochs on `store` by 2 Ray Train workers on different nodes,
    registered as ctt-mmc-visual@champion."""
    from ctt.config import load_config
    from ctt.experiment.distributed.train_driver import run_training
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    cfg = load_config(None, ["train.max_epochs=2", "resources.num_workers=2", "tracking.experiment=it",
                             "resources.placement_strategy=STRICT_SPREAD",          # one worker per node
                             "tracking.register_as=ctt-mmc-visual", "tracking.register_alias=champion",
                             f"tracking.storage_path={tmp_path_factory.mktemp('ckpt')}"])
    summary = run_training(str(store[0]), cfg)
    mp.undo()
    return summary


@pytest.fixture(scope="session")
def runs(medium_store, mlflow_server, tmp_path_factory) -> dict:
    """CTT-MMC-C, CTT-MMC-S (Platt-calibrated) and the LSTM trained briefly on `medium_store` in
    experiment `methods`, shared by the experiment tests; and any checkpoint staging left behind."""
    from tests.experiment_helpers import LSTM, train_model
    tmp = tmp_path_factory.mktemp("ckpt")
    staged_before = set(glob.glob(os.path.join(tempfile.gettempdir(), "ctt_ckpt_*")))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
        out = {
            "ctt-c": train_model(medium_store, "ctt-c", tmp, "train.max_epochs=16", "train.patience=16"),
            "ctt-s": train_model(medium_store, "ctt-s", tmp, "train.max_epochs=4", "train.checkpoint_every=4",
                           "model.parts=4", "model.test_draws=3", "train.calibration=platt"),
            "lstm": train_model(medium_store, "lstm", tmp, *LSTM),
        }
    out["staged_left"] = set(glob.glob(os.path.join(tempfile.gettempdir(), "ctt_ckpt_*"))) - staged_before
    out["store"] = medium_store
    return out


@pytest.fixture
def tracking_env(mlflow_server, monkeypatch) -> str:
    """MLFLOW_TRACKING_URI set to the session's server for one test."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    return mlflow_server.url

"""End to end on real components: a Ray head, an MLflow server, `ray job submit` (all on 127.0.0.1)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pytest

from benchmarks.usage_errors import MISTAKES, manifest_without_paths

from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_featurize_store_and_errors(samples, store):
    out, summary = store
    assert summary["trailers"] == 11 and summary["done"] == 10 and summary["failed"] == 1
    t = pads.dataset(str(out)).to_table()        # plain pyarrow, no Ray
    assert t.num_rows == 10
    frames = t.column("frames").to_pylist()
    assert all(len(f) >= 1 and len(f[0]) == 512 for f in frames)
    assert t.column("num_keyframes").to_pylist() == [len(f) for f in frames]
    assert set(t.column("split").to_pylist()) == {"train", "val", "test"}
    df = pd.read_parquet(out)
    assert df.frames.iloc[0][0].shape == (512,) and np.isfinite(np.stack(df.frames.iloc[0])).all()
    errors = pd.read_parquet(out / "_errors")
    assert errors.trailer_id.tolist() == ["broken1"] and errors.stage.tolist() == ["decode"]
    assert "Invalid data" in errors.message.iloc[0]
    settings = json.loads((out / "_featurizer.json").read_text())
    assert settings["settings"]["feature_dim"] == 512
    # audio: 4-6 s of sound -> one or two 3-s windows of 130 x 513, float16
    assert t.column("has_audio").to_pylist() == [True] * 10
    spec = t.column("spectrograms")
    assert spec.type.value_type.list_size == 130 * 513 and set(t.column("num_windows").to_pylist()) <= {1, 2}
    assert [len(s) for s in spec.to_pylist()] == t.column("num_windows").to_pylist()
    names = settings["settings"]
    assert all(len(v) == len(names["vllf_names"]) for v in t.column("vllf").to_pylist())
    assert all(len(v) == len(names["av_names"]) and np.isfinite(v).all() for v in t.column("av").to_pylist())


def test_featurize_rerun_skips_done_work(samples, store):
    from ctt.config import load_config
    from featurize.pipeline import run_featurize
    out, _ = store
    summary = run_featurize(str(samples / "manifest.csv"), str(out), load_config(None, TINY).featurize)
    assert summary["skipped"] == 11 and summary["done"] == 0
    assert pads.dataset(str(out)).count_rows() == 10


def test_train_two_epochs_two_workers_logs_to_mlflow(trained, mlflow_server, monkeypatch, tmp_path):
    import mlflow

    from featurize.genres import GENRES
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    summary = trained
    client = mlflow.MlflowClient(mlflow_server.url)
    run = client.get_run(summary["run_id"])
    assert run.info.status == "FINISHED"
    assert int(run.data.params["num_params"]) == summary["num_params"] > 0
    assert run.data.params["model.name"] == "ctt-c" and run.data.params["train.lr"] == "0.001"
    for name in ["test_auprc_micro", "test_auprc_macro", "test_auprc_weighted", "test_ranking_loss"] + \
            [f"test_auprc_{g}" for g in GENRES]:
        assert name in run.data.metrics
    assert 0 <= run.data.metrics["test_auprc_micro"] <= 1
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [0, 1]
    assert len(client.get_metric_history(run.info.run_id, "val_auprc_micro")) == 2
    arts = {a.path for d in ("predictions", "metrics", "plots", "model") for a in client.list_artifacts(run.info.run_id, d)}
    assert {"predictions/test_predictions.csv", "metrics/test_metrics.json", "plots/test_pr_curves.png",
            "model/thresholds.json"} <= arts
    preds = pd.read_csv(client.download_artifacts(run.info.run_id, "predictions/test_predictions.csv", str(tmp_path)))
    assert list(preds.columns) == ["trailer_id", *GENRES, "true_genres"] and preds[list(GENRES)].stack().between(0, 1).all()
    model = mlflow.pyfunc.load_model(summary["model_uri"])          # the servable model, with its signature
    assert [c.name for c in model.metadata.signature.inputs] == ["trailer_id", "path", "frames", "spectrograms"]
    assert [c.name for c in model.metadata.signature.outputs] == ["trailer_id", *GENRES, "genres", "error", "evidence"]
    assert [p.name for p in model.metadata.signature.params] == ["evidence"]       # predict(df, params={"evidence": True})
    net = model.unwrap_python_model().predictor.members["visual"].scorer.model
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == summary["num_params"]


def test_training_run_records_its_lineage(trained, store, mlflow_server):
    """The store as a dataset input, only the config sections training read plus the store's
    featurizer settings as params, the code's commit, and the MLflow 3 experiment kind."""
    import mlflow
    client = mlflow.MlflowClient(mlflow_server.url)
    run = client.get_run(trained["run_id"])
    (inp,) = run.inputs.dataset_inputs
    assert inp.dataset.name == "store" and inp.dataset.source_type == "local" and len(inp.dataset.digest) == 16
    assert json.loads(inp.dataset.source)["uri"] == str(store[0])
    assert [t.value for t in inp.tags if t.key == "mlflow.data.context"] == ["training"]
    sections = {k.split(".")[0] for k in run.data.params if "." in k}
    assert sections == {"model", "train", "resources", "tracking", "featurizer", "leakage"}, sections
    settings = json.loads((store[0] / "_featurizer.json").read_text())["settings"]
    assert run.data.params["featurizer.backbone.name"] == settings["backbone"]["name"] == "resnet18"
    assert run.data.params["featurizer.shots.cut_ratio"] == str(settings["shots"]["cut_ratio"])
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert run.data.tags["mlflow.source.git.commit"] == commit
    assert client.get_experiment(run.info.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"


def _submit(ray_head, args, env_vars=None):
    from cluster.local import submit
    proc = submit(ray_head.url, args, env_vars, capture=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_ray_job_submit_featurize_then_train(samples, ray_head, mlflow_server, tmp_path):
    import mlflow
    out = tmp_path / "store"
    stdout = _submit(ray_head, ["jobs/featurize.py", "--input", str(samples / "manifest.csv"),
                                "--output", str(out), *TINY, "tracking.experiment=submitted-featurize"],
                     {"MLFLOW_TRACKING_URI": mlflow_server.url})
    assert '"done": 10' in stdout and '"failed": 1' in stdout
    assert pads.dataset(str(out)).count_rows() == 10
    client = mlflow.MlflowClient(mlflow_server.url)
    (frun,) = client.search_runs([client.get_experiment_by_name("submitted-featurize").experiment_id])
    qa = sorted(a.path for a in client.list_artifacts(frun.info.run_id, "qa"))      # what featurize saw
    assert "qa/store_overview.png" in qa and len([a for a in qa if a.endswith("_keyframes.png")]) == 3
    assert len([a for a in qa if a.endswith("_shots.png")]) == 3
    stdout = _submit(ray_head, ["jobs/train.py", "--features", str(out), "--model", "ctt-a", "train.max_epochs=1",
                                "tracking.experiment=submitted", f"tracking.storage_path={tmp_path / 'ckpt'}"],
                     {"MLFLOW_TRACKING_URI": mlflow_server.url})
    assert "random" in stdout and "ctt-a" in stdout
    assert sum("epoch 0: train_loss=" in line for line in stdout.splitlines()) == 1      # each epoch printed once
    assert "Traceback" not in stdout, stdout
    client = mlflow.MlflowClient(mlflow_server.url)
    runs = client.search_runs([client.get_experiment_by_name("submitted").experiment_id])
    assert len(runs) == 1 and runs[0].data.params["model.name"] == "ctt-a"
    assert runs[0].data.tags["ray.job_submission_id"].startswith("raysubmit_")     # which Ray job made it
    assert "test_auprc_micro" in runs[0].data.metrics


JOBS = sorted(p.stem for p in (ROOT / "jobs").glob("*.py") if not p.stem.startswith("_"))


@pytest.mark.parametrize("job", JOBS)
def test_every_job_answers_help(job):
    """Every file in jobs/ is a command: a new one is tested here without being listed."""
    proc = subprocess.run([sys.executable, f"jobs/{job}.py", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: ") and f"{job}.py" in proc.stdout


def test_featurize_job_fails_clearly_on_bad_config_and_missing_weights(tmp_path):
    env = os.environ | {"TORCH_HOME": str(tmp_path), "https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    (tmp_path / "m.csv").write_text("trailer_id,path\na,a.mp4\n")        # a valid input: the weights are what fails
    base = [sys.executable, "jobs/featurize.py", "--input", str(tmp_path / "m.csv"), "--output", str(tmp_path / "s")]
    proc = subprocess.run(base + ["featurize.backbone.nme=x"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and "unknown config key 'featurize.backbone.nme'" in proc.stderr
    proc = subprocess.run(base + ["featurize.backbone.name=resnet18"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and "ImageNet weights for resnet18" in proc.stderr and "Traceback" not in proc.stderr


BAD_CONFIGS = [
    ("train", ["train.lr=-1"], "train.lr=-1.0: must be > 0"),
    ("train", ["train.batch_size=0"], "train.batch_size=0: must be >= 1"),
    ("train", ["resources.num_workers=0"], "resources.num_workers=0: must be >= 1"),
    ("train", ["baseline.seed=3"], "baseline.seed: this job does not read the baseline section"),
    ("train", ["--config", "missing.yaml"], "config file missing.yaml: No such file or directory"),
    ("train", ["--config", "{bad}"], "YAML syntax error at line 3"),
    ("featurize", ["train.lr=0.1"], "train.lr: this job does not read the train section (it reads featurize, tracking)"),
    ("baselines", ["model.f=5"], "model.f: this job does not read the model section"),
    ("fuse", ["fusion.step=2"], "fusion.step must be in (0, 1]"),
    ("predict", ["featurize.max_failed_fraction=1.5"], "featurize.max_failed_fraction=1.5: must be in [0, 1]"),
]
JOB_ARGS = {"train": ["--features", "s"], "featurize": ["--input", "i", "--output", "s"],
            "baselines": ["--features", "s", "--method", "random"], "fuse": ["--visual", "a", "--audio", "b"],
            "predict": ["--model", "m", "a.mp4"]}


@pytest.mark.parametrize("job, args, message", BAD_CONFIGS, ids=[" ".join(b[1]) for b in BAD_CONFIGS])
def test_config_errors_are_one_line_and_exit_2(job, args, message, tmp_path):
    (tmp_path / "{bad}").write_text("train:\n  lr: [1\n")
    args = [str(tmp_path / a) if a.endswith("}") else a for a in args]
    proc = subprocess.run([sys.executable, str(ROOT / f"jobs/{job}.py"), *JOB_ARGS[job], *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_print_config_shows_the_resolved_sections_of_the_job():
    import yaml
    proc = subprocess.run([sys.executable, "jobs/train.py", "--features", "s", "--config", "configs/demo.yaml",
                           "train.lr=0.01", "--print-config"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    cfg = yaml.safe_load(proc.stdout)
    assert proc.returncode == 0 and set(cfg) == {"model", "train", "resources", "tracking"}
    assert cfg["train"]["lr"] == 0.01 and cfg["tracking"]["experiment"] == "ctt-mmc-demo"


def test_featurize_fails_when_nothing_succeeds_after_recording_every_failure(ray_head, mlflow_server, tmp_path,
                                                                           capsys, monkeypatch):
    """Every input broken: exit 1, with every trailer in the errors table, and the featurize
    run in MLflow saying so (counts, the errors table, the store as its output)."""
    import mlflow

    from jobs import featurize
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    for i in range(3):
        (tmp_path / f"bad{i}.mp4").write_bytes(b"\0" * (100 * i))
    out = tmp_path / "store"
    with pytest.raises(SystemExit) as exit_:
        featurize.main(["--input", str(tmp_path), "--output", str(out), *TINY, "tracking.experiment=featurize-it"])
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and "no trailer succeeded: all 3 failed" in err, err[-2000:]
    client = mlflow.MlflowClient(mlflow_server.url)
    (run,) = client.search_runs([client.get_experiment_by_name("featurize-it").experiment_id], "tags.kind = 'featurize'")
    assert run.info.status == "FINISHED" and run.data.tags["failed_because"].startswith("no trailer succeeded")
    assert (run.info.end_time - run.info.start_time) / 1000 >= run.data.metrics["wall_s"]   # the whole job, not its logging
    assert (run.data.metrics["done"], run.data.metrics["failed"]) == (0, 3)
    assert run.data.params["featurize.backbone.name"] == run.data.params["featurizer.backbone.name"] == "resnet18"
    errors = pd.read_csv(client.download_artifacts(run.info.run_id, "featurize/errors.csv", str(tmp_path)))
    assert sorted(errors.trailer_id) == ["bad0", "bad1", "bad2"]
    (inp,) = run.inputs.dataset_inputs
    assert [t.value for t in inp.tags if t.key == "mlflow.data.context"] == ["output"]
    assert sorted(pads.dataset(str(out / "_errors")).to_table().column("trailer_id").to_pylist()) == \
        ["bad0", "bad1", "bad2"]


def test_featurize_verdict():
    from featurize.pipeline import verdict
    summary = {"done": 8, "failed": 2, "failed_by_reason": {"InvalidDataError": 2}}
    assert verdict(summary, 0.2) == ""
    assert "2 of 10 trailers failed (InvalidDataError 2), more than featurize.max_failed_fraction=0.1" \
        in verdict(summary, 0.1)
    assert verdict({"done": 0, "failed": 0, "failed_by_reason": {}}, 0.0) == ""        # a rerun with nothing to do


INPUT_ERRORS = MISTAKES          # job, its arguments (TMP: the test's folder), what the one line says


@pytest.mark.parametrize("job, args, message", INPUT_ERRORS, ids=[f"{j} {' '.join(a)}" for j, a, _ in INPUT_ERRORS])
def test_input_errors_are_usage_errors_before_ray_or_mlflow(job, args, message, tmp_path):
    """A missing or malformed input is one line and exit 2, checked before Ray or MLflow start
    (MLflow points at a closed port: reaching it would be a different error)."""
    from cluster.env import free_port
    manifest_without_paths(tmp_path)
    args = [a.replace("TMP", str(tmp_path)) for a in args]
    env = os.environ | {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"}
    proc = subprocess.run([sys.executable, f"jobs/{job}.py", *args], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 2 and message.replace("TMP", str(tmp_path)) in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_print_config_needs_no_data_arguments():
    for job in ("featurize", "baselines", "train"):
        proc = subprocess.run([sys.executable, f"jobs/{job}.py", "--print-config"], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 0 and "tracking:" in proc.stdout, (job, proc.stderr)


def test_jobs_fail_fast_when_mlflow_is_down(tmp_path):
    """No server on the port: a clear error in seconds, before any work (not minutes of client retries)."""
    import time

    from cluster.env import free_port
    env = os.environ | {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"}
    (tmp_path / "_featurizer.json").write_text("{}")            # a store to read: MLflow is what is missing
    for args in (["jobs/train.py", "--features", str(tmp_path)], ["jobs/report.py", "--experiment", "x"],
                 ["jobs/baselines.py", "--features", str(tmp_path), "--method", "random"]):
        t = time.time()
        proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 1 and "is not reachable" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert time.time() - t < 60


def test_spectrograms_in_actors_match_decode_tasks(samples, store, tmp_path):
    """The GPU-actor path (torch.stft in the embedder actors; here on CPU) writes what librosa wrote."""
    from ctt.config import load_config
    from featurize.pipeline import run_featurize
    out = tmp_path / "store"
    cfg = load_config(None, TINY + ["featurize.spectrograms_on=actor"]).featurize
    assert run_featurize(str(samples / "manifest.csv"), str(out), cfg)["done"] == 10
    a = pd.read_parquet(store[0], columns=["trailer_id", "spectrograms", "audio_padded"]).sort_values("trailer_id")
    b = pd.read_parquet(out, columns=["trailer_id", "spectrograms", "audio_padded"]).sort_values("trailer_id")
    assert list(a.trailer_id) == list(b.trailer_id) and list(a.audio_padded) == list(b.audio_padded)
    for sa, sb in zip(a.spectrograms, b.spectrograms):
        x, y = np.stack(sa).astype(np.float32), np.stack(sb).astype(np.float32)
        assert x.shape == y.shape and np.linalg.norm(x - y) / np.linalg.norm(x) < 1e-3

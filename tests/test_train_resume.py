"""A training job whose driver dies goes on with `jobs/train.py --resume RUN_ID`: the same MLflow
run, the same Ray Train storage, from the last checkpoint, every epoch logged once."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_killed_driver_resumes_in_the_same_run(store, ray_head, mlflow_server, tmp_path):
    import mlflow
    from ray.util.state import list_actors
    env = os.environ | {"RAY_ADDRESS": ray_head.gcs_address, "MLFLOW_TRACKING_URI": mlflow_server.url,
                        "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "jobs/train.py", "--features", str(store[0]), "--model", "ctt-a", "train.max_epochs=6",
           "train.patience=100", "train.checkpoint_every=1", "train.batch_size=8", "tracking.experiment=resume",
           f"tracking.storage_path={tmp_path / 'ckpt'}"]
    log = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    client = mlflow.MlflowClient(mlflow_server.url)
    run_id, deadline = None, time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        exp = client.get_experiment_by_name("resume")
        runs = client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'") if exp else []
        if runs and len(client.get_metric_history(runs[0].info.run_id, "train_loss")) >= 3:
            run_id = runs[0].info.run_id
            break
        time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)                       # the driver dies, and Ray ends its job
    proc.wait()
    assert run_id, (tmp_path / "first.log").read_text()[-3000:]
    deadline = time.time() + 60
    while time.time() < deadline and list_actors(address=ray_head.gcs_address, raise_on_missing_output=False,
                                                 filters=[("class_name", "=", "RayTrainWorker"),
                                                          ("state", "=", "ALIVE")]):
        time.sleep(0.5)
    assert client.get_run(run_id).info.status == "RUNNING"     # killed, never ended

    out = subprocess.run([sys.executable, "jobs/train.py", "--resume", run_id], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "restored from the checkpoint of epoch" in out.stdout + out.stderr
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and "test_auprc_micro" in run.data.metrics
    steps = sorted(m.step for m in client.get_metric_history(run_id, "train_loss"))
    assert steps == list(range(6)), steps                      # every epoch once: none lost, none twice
    restored = client.get_metric_history(run_id, "restored_from_epoch")
    assert len(restored) == 1 and restored[0].value >= 2
    exp = client.get_experiment_by_name("resume")
    assert [r.info.run_id for r in client.search_runs([exp.experiment_id])] == [run_id]   # one run, continued

    again = subprocess.run([sys.executable, "jobs/train.py", "--resume", run_id], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "has already finished" in again.stderr


def test_newest_checkpoint_on_storage_skips_a_truncated_one(tmp_path):
    import torch

    from ctt.experiment.distributed.checkpoints import load_state as _load, newest_checkpoint
    run = tmp_path / "ctt_abc"
    for epoch, stamp in ((3, "06-41-46.1"), (4, "06-41-48.2"), (5, "06-41-50.3")):
        (run / f"checkpoint_2026-12-02_{stamp}").mkdir(parents=True)
        torch.save({"state": {"epoch": epoch}}, run / f"checkpoint_2026-12-02_{stamp}" / "state.pt")
    (run / "checkpoint_manager_snapshot.json").write_text("{}")
    assert _load(newest_checkpoint((str(tmp_path), None), "ctt_abc"))["state"]["epoch"] == 5
    newest = run / "checkpoint_2026-12-02_06-41-50.3" / "state.pt"
    newest.write_bytes(newest.read_bytes()[:20])                        # killed mid-copy
    assert _load(newest_checkpoint((str(tmp_path), None), "ctt_abc"))["state"]["epoch"] == 4
    assert newest_checkpoint((str(tmp_path), None), "ctt_none") is None

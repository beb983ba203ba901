"""`jobs/benchmark.py --suite gpu --quick` runs every section on this machine (CPU when
there is no GPU) and writes its table; the counted FLOPs and the spectrograms are checked
against references (not a timed test)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torchvision

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_gpu_suite_quick_runs_every_section(tmp_path):
    out = tmp_path / "gpu.json"
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
    proc = subprocess.run([sys.executable, str(ROOT / "jobs/benchmark.py"), "--suite", "gpu", "--quick",
                           "--work", str(tmp_path / "w"), "--out", str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())
    for section in ("embedder", "train", "stft", "shots", "featurize"):
        assert "error" not in res[section], res[section]
    assert res["shots"]["max_abs_diff"] < 1e-5 and res["shots"]["batched_device_s"] > 0   # batched == the package
    e = res["embedder"]
    # torchvision's own count for resnet18 (multiply-adds, in G): the counter gives 2 FLOPs each
    macs = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["_ops"]
    assert e["gflop_per_image"] == pytest.approx(2 * macs, rel=0.02)
    assert e["actor_kf_per_s"] > 0 and e["matmul_tflop_per_s"] > 0
    t = res["train"]
    assert t["ctt-c"]["num_params"] < t["lstm"]["num_params"] and t["lstm"]["s_per_epoch"] > 0
    assert res["stft"]["max_abs_diff"] < 1e-3                          # torch.stft == the NumPy path
    runs = res["featurize"]["runs"]
    assert set(runs) == {"decode", "actor"} and all(r["trailers_per_hour"] > 0 for r in runs.values())
    assert "| featurize |" in proc.stdout and "| embedder |" in proc.stdout


def test_gpu_suite_refuses_an_unknown_section(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "jobs/benchmark.py"), "--suite", "gpu", "--skip", "nope"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "nope" in proc.stderr

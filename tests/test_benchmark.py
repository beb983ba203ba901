"""`jobs/benchmark.py --quick` runs every measurement and writes its table (not a timed test)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_benchmark_quick_runs_every_section(tmp_path):
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
    proc = subprocess.run([sys.executable, str(ROOT / "jobs/benchmark.py"), "--quick", "--work", str(tmp_path / "w"),
                           "--out", str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "[libx264 @" not in proc.stdout + proc.stderr        # FFmpeg's log stays silent after PySceneDetect
    res = json.loads(out.read_text())
    sections = {r["section"] for r in res["rows"]}
    assert sections == {"decode", "backbone", "audio", "train", "shots real", "shots rendered", "shots", "diy", "svm",
                        "options", "driver", "dedup", "usage", "memory", "end2end"}      # shots: what the learned detector costs
    assert all(m["code"] == 2 and m["said"] for m in res["usage"])          # each mistake: exit 2, its one line
    assert "ray_train" not in res                               # skipped in --quick
    for r in res["rows"]:
        assert r["ratio"] > 0, r
    assert res["train"]["ctt-c"]["num_params"] < res["train"]["lstm"]["num_params"]
    assert res["memory"]["4n"]["trailers"] == 4 * res["memory"]["n"]["trailers"]
    assert res["memory"]["n"]["peak_worker_rss_mb"] > 50          # real worker processes were measured
    assert res["end_to_end"]["lmtd9_core_hours"] > 0
    for key in ("shots", "shots_real"):   # rendered trailers, and videos edited from real footage
        shots = {k: v for k, v in res[key].items() if "skipped" not in v}
        assert len(shots) == 6            # ours (hsv, the paper's rule, transnetv2), PySceneDetect's two, decoding
        assert res[key]["ctt-mmc transnetv2 (decode pass + network, CPU)"]["gradual_recall"] > 0
        for d in shots.values():
            assert 0 <= d["all_f1"] <= 1 and d["fps_per_core"] > 0 and d["frames"] > 0
    real = res["shots_real"]["ctt-mmc hsv (in the decode pass)"]
    assert real["n_flash"] > 0 and real["recall_dissolve"] is not None
    assert res["diy"]["same_shapes"]                          # the reference makes the same outputs
    assert all(len(res["svm"][k]["chosen"]) == 9 for k in ("decision", "probability"))
    assert res["driver"]["big"]["to_do"] == 10 * res["driver"]["small"]["to_do"]
    assert res["backbones"]["mobilenet_v3_small"]["dim"] == 1024 and res["evidence"]["evidence_s"] > 0
    assert "| section | measurement |" in proc.stdout

"""The end-to-end demo: sample trailers -> local cluster -> featurize and train via `ray job submit`.

    python jobs/demo.py [--n 150] [--data data/demo] [--config configs/demo.yaml]

Leaves the local cluster running so the MLflow UI and the Ray dashboard can be
opened; `make cluster-down` stops it.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cluster import local  # noqa: E402
from jobs.train import MEASURES  # noqa: E402


def submit(ray_url: str, mlflow_url: str, args: list[str]) -> None:
    env = os.environ | local.SAFE_ENV | {"RAY_ADDRESS": ray_url}
    runtime_env = {"env_vars": {"MLFLOW_TRACKING_URI": mlflow_url, "PYTHONUNBUFFERED": "1"}}
    cmd = [local._bin("ray"), "job", "submit", "--working-dir", str(ROOT),
           "--runtime-env-json", json.dumps(runtime_env), "--", "python", *args]
    print("$ " + " ".join(cmd[:2] + ["submit", "--working-dir", ".", "--", "python", *args]), flush=True)
    subprocess.run(cmd, env=env, check=True, cwd=ROOT)


def latest_run(mlflow_url: str, experiment: str) -> tuple[dict, dict]:
    import mlflow
    client = mlflow.MlflowClient(mlflow_url)
    exp = client.get_experiment_by_name(experiment)
    run = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)[0]
    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(run.info.run_id, "metrics/test_metrics.json", tmp)
        payload = json.loads(Path(path).read_text())
    return run.data.metrics | {"run_id": run.info.run_id}, payload


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=200, help="sample trailers to generate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=str(ROOT / "data" / "demo"), help="where samples and the store go")
    p.add_argument("--config", default="configs/demo.yaml")
    p.add_argument("--state", default=str(ROOT / ".cluster"), help="local cluster state folder")
    a = p.parse_args(argv)
    t0 = time.time()
    data = Path(a.data).resolve()
    samples, store = data / f"samples_n{a.n}_s{a.seed}", data / f"store_n{a.n}_s{a.seed}"
    os.environ.update({k: v for k, v in local.SAFE_ENV.items()})

    print(f"== 1/4 sample trailers ({a.n}) -> {samples}", flush=True)
    if not (samples / "manifest.csv").exists():
        subprocess.run([sys.executable, str(ROOT / "jobs/make_samples.py"), "--out", str(samples),
                        "--n", str(a.n), "--seed", str(a.seed)], check=True)
    else:
        print("   already there")

    print("== 2/4 local cluster (Ray head + MLflow server on 127.0.0.1)", flush=True)
    info = local.up(Path(a.state), num_cpus=os.cpu_count())
    ray_url, mlflow_url = info["ray"]["url"], info["mlflow"]["url"]
    print(f"   Ray dashboard {ray_url}   MLflow {mlflow_url}", flush=True)

    print("== 3/4 featurize (ray job submit)", flush=True)
    submit(ray_url, mlflow_url, ["jobs/featurize.py", "--config", a.config,
                                 "--input", str(samples / "manifest.csv"), "--output", str(store)])

    print("== 4/4 train CTT-MMC-C (ray job submit)", flush=True)
    submit(ray_url, mlflow_url, ["jobs/train.py", "--config", a.config, "--features", str(store), "--model", "ctt-c"])

    from ctt.config import load_config
    cfg = load_config(ROOT / a.config)
    metrics, payload = latest_run(mlflow_url, cfg.tracking.experiment)
    rnd = payload["random_baseline"]
    print("\n== CTT-MMC demo: test split of the sample trailers")
    print(f"backbone: {cfg.featurize.backbone.name}, weights={cfg.featurize.backbone.weights}"
          + (" (random init: demo only, not the paper's ImageNet ResNet-152)" if cfg.featurize.backbone.weights == "none" else ""))
    print(f"{'method':<10}" + "".join(f"{m:>16}" for m in MEASURES))
    print(f"{'ctt-c':<10}" + "".join(f"{metrics['test_' + m]:>16.3f}" for m in MEASURES))
    print(f"{'random':<10}" + "".join(f"{rnd['test_' + m]:>16.3f}" for m in MEASURES))
    print(f"\nMLflow UI:     {mlflow_url}  (experiment '{cfg.tracking.experiment}', run {metrics['run_id']})")
    print(f"Ray dashboard: {ray_url}")
    print(f"demo wall time: {time.time() - t0:.0f} s.  Stop the local cluster with: make cluster-down")
    return 0


if __name__ == "__main__":
    sys.exit(main())

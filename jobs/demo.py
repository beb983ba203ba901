"""The end-to-end demo: sample trailers -> local cluster -> featurize, train ctt-c, ctt-s and
lstm, fuse, baselines (via `ray job submit`) -> the report table.

    python jobs/demo.py [--n 150] [--data data/demo] [--config configs/demo.yaml]

Leaves the local cluster running so the MLflow UI and the Ray dashboard can be
opened; `make cluster-down` stops it.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cluster import env  # noqa: E402

env.apply()

from ctt.config import load_config  # noqa: E402


def submit(ray_url: str, mlflow_url: str, args: list[str]) -> None:
    from cluster import local  # lazy: imports Ray (2 s); --help answers without it
    print("$ ray job submit --working-dir . --runtime-env cluster/runtime_env.yaml -- python " + " ".join(args), flush=True)
    local.submit(ray_url, args, {"MLFLOW_TRACKING_URI": mlflow_url}).check_returncode()


# CTT-MMC-S costs about 50 GFLOP per step of 16 trailers x 11 spectrograms: on 2 CPU cores the
# demo draws 4 parts per trailer (the paper: 11), with patience 10 so early stopping ends it
# well before its cap of 60 epochs.
AUDIO_DEMO = ["model.parts=4", "train.max_epochs=60", "train.patience=10", "model.spectrogram=log"]
# CTT-MMC-C trains over three seeds: on ~40 test trailers one seed's AU(PRC) moves by a few
# points, and the report judges a repeat group against its linear probe by the seeds' mean.
VISUAL_DEMO = ["--seeds", "3"]


def tracking_links(run_id: str) -> dict[str, str]:
    from ctt.experiment.tracking import connection  # lazy: imports MLflow and torch (5 s); --help answers without them
    return connection.ui_links(run_id)


def latest_run_id(experiment: str, method: str) -> str:
    from ctt.experiment.tracking import reading  # lazy: imports MLflow and torch (5 s); --help answers without them
    runs = reading.find_runs(experiment, f"tags.method = '{method}'", max_results=1)
    if not runs:
        raise SystemExit(f"error: no finished {method} run in experiment {experiment!r}")
    return runs[0].run_id


def how_it_ended(experiment: str, method: str) -> str:
    """'early_stopping after 23 epochs (best 8)' or 'max_epochs after 50 epochs (best 49)'."""
    from ctt.experiment.tracking import reading  # lazy: imports MLflow and torch (5 s); --help answers without them
    run = reading.find_runs(experiment, f"tags.method = '{method}'", max_results=1)[0]
    m = run.metrics
    return (f"{run.tags.get('ended_by', '?')} after {m.get('epochs_trained', 0):.0f} epochs "
            f"(best {m.get('best_epoch', 0):.0f})")


def local_job(mlflow_url: str, args: list[str]) -> None:
    """Jobs that need no cluster (fuse, report) run here, against the same MLflow server."""
    print("$ python " + " ".join(args), flush=True)
    env_vars = os.environ | env.SAFE_ENV | {"MLFLOW_TRACKING_URI": mlflow_url}
    subprocess.run([sys.executable, *args], env=env_vars, check=True, cwd=ROOT)


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
    os.environ.update(env.SAFE_ENV)

    print(f"== 1/8 sample trailers ({a.n}) -> {samples}", flush=True)
    if not (samples / "manifest.csv").exists():
        subprocess.run([sys.executable, str(ROOT / "jobs/make_samples.py"), "--out", str(samples),
                        "--n", str(a.n), "--seed", str(a.seed)], check=True)
    else:
        print("   already there")

    print("== 2/8 local cluster (Ray head + MLflow server on 127.0.0.1)", flush=True)
    from cluster import local  # lazy: imports Ray (2 s); --help answers without it
    info = local.up(Path(a.state), num_cpus=os.cpu_count())
    ray_url, mlflow_url = info["ray"]["url"], info["mlflow"]["url"]
    print(f"   Ray dashboard {ray_url}   MLflow {mlflow_url}", flush=True)

    print("== 3/8 featurize (ray job submit)", flush=True)
    submit(ray_url, mlflow_url, ["jobs/featurize.py", "--config", a.config,
                                 "--input", str(samples / "manifest.csv"), "--output", str(store)])

    cfg = load_config(ROOT / a.config)
    os.environ["MLFLOW_TRACKING_URI"] = mlflow_url        # this process reads the runs back
    exp = cfg.tracking.experiment
    timings = {}
    for i, model in enumerate(("ctt-c", "ctt-s", "lstm")):
        extra = {"ctt-s": AUDIO_DEMO, "ctt-c": VISUAL_DEMO}.get(model, [])
        print(f"== {4 + i}/8 train {model} (ray job submit)" + (f"; demo only: {' '.join(extra)}" if extra else ""),
              flush=True)
        t = time.time()
        submit(ray_url, mlflow_url, ["jobs/train.py", "--config", a.config, "--features", str(store), "--model", model,
                                     f"tracking.storage_path={data / 'checkpoints'}"] + extra)   # make clean removes them
        timings[model] = time.time() - t
    print("== 7/8 Two-Nets fusion of ctt-c and ctt-s, the baselines and the linear probes", flush=True)
    t = time.time()
    local_job(mlflow_url, ["jobs/fuse.py", "--config", a.config, "--visual", latest_run_id(exp, "ctt-c"),
                           "--audio", latest_run_id(exp, "ctt-s")])
    timings["ctt-tn"] = time.time() - t
    t = time.time()
    submit(ray_url, mlflow_url, ["jobs/baselines.py", "--config", a.config, "--features", str(store),
                                 "--method", "vllf", "--method", "av", "--method", "random"])
    timings["baselines"] = time.time() - t
    t = time.time()
    for what in ("frames", "spectrograms", "both", "av"):  # beyond the paper: the linear probes
        submit(ray_url, mlflow_url, ["jobs/baselines.py", "--config", a.config, "--features", str(store),
                                     "--method", "probe", f"baseline.probe_input={what}"])
    timings["probes"] = time.time() - t
    print("== 8/8 report", flush=True)
    report_dir = data / "report"
    local_job(mlflow_url, ["jobs/report.py", "--experiment", exp, "--output", str(report_dir)])

    print("\n== CTT-MMC demo: test split of the sample trailers")
    print(f"backbone: {cfg.featurize.backbone.name}, weights={cfg.featurize.backbone.weights}"
          + (" (random init: demo only, not the paper's ImageNet ResNet-152)" if cfg.featurize.backbone.weights == "none" else ""))
    print(f"schedule: at most {cfg.train.max_epochs} epochs, patience {cfg.train.patience}; ctt-s with "
          f"{' '.join(AUDIO_DEMO)} (short, for the demo; the paper trains up to 200 epochs with patience 20, p=11)")
    print("wall time per step (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    print("training ended by: " + "; ".join(f"{m} {how_it_ended(exp, m)}" for m in ("ctt-c", "ctt-s", "lstm")))
    print(f"report: {report_dir / 'report.md'}")
    print(f"\nMLflow UI:     {tracking_links(latest_run_id(exp, 'ctt-c')).get('experiment_url', mlflow_url)}"
          f"  (experiment '{exp}', Model training view)")
    print(f"served model:  mlflow.pyfunc.load_model('runs:/{latest_run_id(exp, 'ctt-tn')}/model')  (the fused run)")
    print(f"Ray dashboard: {ray_url}")
    print(f"demo wall time: {time.time() - t0:.0f} s.  Stop the local cluster with: make cluster-down")
    return 0


if __name__ == "__main__":
    sys.exit(main())

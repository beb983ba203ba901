"""The end-to-end demo: sample trailers -> local cluster -> featurize, train ctt-c, ctt-s and
lstm, fuse, baselines (via `ray job submit`) -> the report table.

    python jobs/demo.py [--n 150] [--data data/demo] [--config configs/demo.yaml]

Leaves the local cluster running so the MLflow UI and the Ray dashboard can be
opened; `make cluster-down` stops it.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cluster import env  # noqa: E402

env.apply()

from ctt.config import load_config  # noqa: E402


# CTT-MMC-S costs about 50 GFLOP per step of 16 trailers x 11 spectrograms: on 2 CPU cores the
# demo draws 4 parts per trailer (the paper: 11), with patience 10 so early stopping ends it
# well before its cap of 60 epochs.
AUDIO_DEMO = ["model.parts=4", "train.max_epochs=60", "train.patience=10", "model.spectrogram=log"]
# CTT-MMC-C trains over three seeds: on ~40 test trailers one seed's AU(PRC) moves by a few
# points, and the report judges a repeat group against its linear probe by the seeds' mean.
VISUAL_DEMO = ["--seeds", "3"]
FUSED = "ctt-mmc-fused"      # the demo registers its CTT-MMC-TN model under this name, alias champion


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
    logs = data / "logs"
    os.environ.update(env.SAFE_ENV)
    from cluster.console import run_step  # lazy: --help answers without it
    steps = iter(range(1, 13))

    def step(what: str, cmd: list[str], env_vars: dict[str, str] | None = None) -> None:
        k = next(steps)
        name = what.split(" ")[0] if not what.startswith("train") else what.replace(" ", "_")
        if not run_step(f"[{k:>2}/12] {what}", cmd, logs / f"{k:02d}_{name}.log", env=env_vars, cwd=ROOT):
            raise SystemExit(1)

    print(f"CTT-MMC demo: {a.n} sample trailers, logs in {logs}", flush=True)
    if (samples / "manifest.csv").exists():
        next(steps)
        print(f"[ 1/12] samples: already in {samples}", flush=True)
    else:
        step("samples (rendered trailers)", [sys.executable, str(ROOT / "jobs/make_samples.py"), "--out", str(samples),
                                             "--n", str(a.n), "--seed", str(a.seed)])
    from cluster import local  # lazy: imports Ray (2 s); --help answers without it
    info = local.up(Path(a.state), num_cpus=os.cpu_count())
    ray_url, mlflow_url = info["ray"]["url"], info["mlflow"]["url"]
    print(f"local cluster: Ray dashboard {ray_url}, MLflow {mlflow_url}", flush=True)

    def job(what: str, args: list[str]) -> None:
        cmd, job_env = local.submit_command(ray_url, args, {"MLFLOW_TRACKING_URI": mlflow_url})
        step(what, cmd, job_env)

    def here(what: str, args: list[str]) -> None:       # jobs that need no cluster (fuse, report)
        step(what, [sys.executable, *args], os.environ | env.SAFE_ENV | {"MLFLOW_TRACKING_URI": mlflow_url})

    job("featurize (ray job submit)", ["jobs/featurize.py", "--config", a.config, "--input", str(samples / "manifest.csv"),
                                       "--output", str(store)])
    cfg = load_config(ROOT / a.config)
    os.environ["MLFLOW_TRACKING_URI"] = mlflow_url        # this process reads the runs back
    exp = cfg.tracking.experiment
    for model in ("ctt-c", "ctt-s", "lstm"):
        extra = {"ctt-s": AUDIO_DEMO, "ctt-c": VISUAL_DEMO}.get(model, [])
        job(f"train {model}", ["jobs/train.py", "--config", a.config, "--features", str(store), "--model", model,
                               f"tracking.storage_path={data / 'checkpoints'}"] + extra)   # make clean removes them
    here("fuse ctt-c + ctt-s (CTT-MMC-TN)", ["jobs/fuse.py", "--config", a.config, "--visual", latest_run_id(exp, "ctt-c"),
                                            "--audio", latest_run_id(exp, "ctt-s"),
                                            f"tracking.register_as={FUSED}", "tracking.register_alias=champion"])
    job("baselines vllf, av, random", ["jobs/baselines.py", "--config", a.config, "--features", str(store),
                                       "--method", "vllf", "--method", "av", "--method", "random"])
    for what in ("frames", "spectrograms", "both", "av"):  # beyond the paper: the linear probes
        job(f"probe {what}", ["jobs/baselines.py", "--config", a.config, "--features", str(store),
                              "--method", "probe", f"baseline.probe_input={what}"])
    report_dir = data / "report"
    here("report", ["jobs/report.py", "--experiment", exp, "--output", str(report_dir)])

    table3 = (report_dir / "report.md").read_text().split("## Table 3")[1].split("\n## ")[0]
    print("\nTable 3 on the test split of the sample trailers (the paper's LMTD-9 numbers beside; a run id works "
          "as predict.py --model):")
    print("\n".join(line for line in table3.splitlines() if line.startswith("|")))
    weights = cfg.featurize.backbone.weights
    print(f"\nbackbone {cfg.featurize.backbone.name}, weights={weights}"
          + (" (random init: demo only, not the paper's ImageNet ResNet-152)" if weights == "none" else ""))
    print(f"schedule: at most {cfg.train.max_epochs} epochs, patience {cfg.train.patience}; ctt-s with "
          f"{' '.join(AUDIO_DEMO)} (short, for the demo; the paper: 200 epochs, patience 20, p=11)")
    print("training ended by: " + "; ".join(f"{m} {how_it_ended(exp, m)}" for m in ("ctt-c", "ctt-s", "lstm")))
    print(f"MLflow UI: {tracking_links(latest_run_id(exp, 'ctt-c')).get('experiment_url', mlflow_url)}"
          f"   Ray dashboard: {ray_url}")
    print(f"demo wall time {time.time() - t0:.0f} s. Next, in your shell:\n")
    example = next(iter(sorted((samples / "videos").glob("*.mp4"))), samples)
    print(f"  export MLFLOW_TRACKING_URI={mlflow_url}")
    exe = Path(sys.executable)
    py = exe.relative_to(ROOT) if exe.is_relative_to(ROOT) else "python"      # .venv/bin/python: no activation needed
    print(f"  {py} jobs/predict.py --model models:/{FUSED}@champion {example.relative_to(ROOT) if example.is_relative_to(ROOT) else example}")
    print(f"  xdg-open {(report_dir / 'report.html').relative_to(ROOT) if report_dir.is_relative_to(ROOT) else report_dir / 'report.html'}"
          "        # the report")
    print("  make cluster-down                                   # stop the local Ray head and MLflow server")
    return 0


if __name__ == "__main__":
    sys.exit(main())

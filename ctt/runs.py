"""MLflow runs of the jobs that do not train with Ray Train: a method that is scored (Two-Nets
fusion, SVM and random baselines) gets the same params, metrics and artifacts as a training
run, so every method lines up in the MLflow UI and in the report; a featurize run records
what made a store and what it holds."""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from ctt import metrics as M
from ctt import tracking
from ctt.config import Config, flatten, sections_of, to_dict
from featurize import store

Split = tuple[list[str], np.ndarray, np.ndarray]      # trailer ids, labels (N, C), probabilities (N, C)


def log_method_run(cfg: Config, job: str, method: str, test: Split, val: Split | None = None,
                   params: dict[str, Any] | None = None, model: dict[str, Any] | None = None,
                   extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Log a finished method: config + params, test metrics and artifacts, val predictions,
    and `model/<method>.json` (what is needed to apply the method again)."""
    run_name = cfg.tracking.run_name or f"{method}-{time.strftime('%Y%m%d-%H%M%S')}"
    ids, y, probs = test
    test_metrics = M.evaluate(y, probs, prefix="test_")
    with tracking.open_run(cfg.tracking.experiment, run_name, {"method": method, "kind": "score"}) as run_id:
        tracking.log_params(run_id, flatten(sections_of(cfg, job)) | {"method": method, "n_test": len(ids)}
                            | (params or {}))
        tracking.log_dict(run_id, to_dict(cfg), "config/resolved_config.json")
        if val is not None:
            tracking.log_predictions(run_id, "val", *val)
            tracking.log_thresholds(run_id, val[1], val[2])
        tracking.log_evaluation(run_id, "test", ids, y, probs, test_metrics, extra=(extra or {}) | {"method": method})
        if model is not None:
            tracking.log_dict(run_id, model, f"model/{method}.json")
    return {"run_id": run_id, "run_name": run_name, "method": method, "test": test_metrics,
            "tracking_uri": tracking.tracking_uri()}


def log_featurize_run(cfg: Config, summary: dict[str, Any], problem: str = "") -> str:
    """The featurize job as an MLflow run (tag kind=featurize): the settings that made the
    store, the run's counts and throughput, the summary and the store's errors table as
    artifacts, and the store as the run's dataset (context `output`)."""
    out = summary["output"]
    run_name = cfg.tracking.run_name or f"featurize-{time.strftime('%Y%m%d-%H%M%S')}"
    settings = store.settings_of(out) or {}
    with tracking.open_run(cfg.tracking.experiment, run_name, {"kind": "featurize", "store": out}) as run_id:
        tracking.log_params(run_id, flatten(sections_of(cfg, "featurize"))
                            | flatten(settings.get("settings", {}), "featurizer.") | {"input": summary["input"],
                                                                                      "output": out})
        hours = summary["wall_s"] / 3600
        tracking.log_metrics(run_id, {k: float(summary[k]) for k in ("trailers", "skipped", "done", "failed",
                                                                    "video_hours", "wall_s")}
                             | {"trailers_per_hour": (summary["done"] + summary["failed"]) / hours if hours else 0.0})
        tracking.log_dict(run_id, summary, "featurize/summary.json")
        if store.error_ids(out):
            tracking.log_table(run_id, store.read_table(out.rstrip("/") + "/" + store.ERRORS_DIR).to_pandas(),
                               "featurize/errors.csv")
        tracking.log_store_input(out, settings, store.files(out), context="output")
        if problem:
            tracking.set_tag(run_id, "failed_because", problem)
    return run_id

"""One MLflow run for a method that is scored rather than trained by Ray Train
(Two-Nets fusion, SVM and random baselines): the same params, metrics and artifacts
as a training run, so every method lines up in the MLflow UI and in the report."""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from ctt import metrics as M
from ctt import tracking
from ctt.config import Config, flatten, sections_of, to_dict

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

"""The featurize job as an MLflow run (kind featurize): what made the store, what the run
did, and pictures of what it saw."""
from __future__ import annotations

import dataclasses

import tempfile
from pathlib import Path
from typing import Any

from ctt.config import Config
from ctt.experiment.tracking import recording
from featurize import qa, store
from featurize.settings import to_settings


def log_featurize_run(cfg: Config, summary: dict[str, Any], problem: str = "") -> str:
    """The run: the settings that made the store (what its `_featurizer.json` holds, from the
    config that wrote it), the run's counts and throughput, the summary and the store's
    errors table as artifacts, QA pictures, and the store as the run's dataset (context `output`)."""
    out = summary["output"]
    fcfg = dataclasses.replace(cfg.featurize, shots=dataclasses.replace(      # shots.detector=auto as resolved
        cfg.featurize.shots, detector=summary.get("shot_detector", cfg.featurize.shots.detector)))
    settings = store.document(to_settings(fcfg))
    files = store.files(out)
    with recording.record_run("featurize", recording.run_name(cfg, "featurize"), cfg=cfg, job="featurize",
                              params={"input": summary["input"], "output": out}, tags={"store": out},
                              store=recording.StoreInput(out, settings, files, context="output"),
                              started=summary.get("started_at")) as run_id:
        hours = summary["wall_s"] / 3600
        recording.log_metrics(run_id, {k: float(summary[k]) for k in ("trailers", "skipped", "done", "failed",
                                                                     "video_hours", "wall_s")}
                              | {"trailers_per_hour": (summary["done"] + summary["failed"]) / hours if hours else 0.0})
        recording.log_dict(run_id, summary, "featurize/summary.json")
        if store.error_ids(out):
            recording.log_table(run_id, store.read_table(out.rstrip("/") + "/" + store.ERRORS_DIR).to_pandas(),
                                "featurize/errors.csv")
        if files:
            with tempfile.TemporaryDirectory() as tmp:
                recording.log_files(run_id, qa.store_pictures(out, cfg.featurize.qa_samples, Path(tmp), cfg.featurize),
                                    "qa")
        if problem:
            recording.set_tag(run_id, "failed_because", problem)
    return run_id

"""What a run records, and the one way every run is opened (`record_run`): train, scored
methods (fusion, baselines, probes), featurize, repeat parents and reports all get the
same name pattern, tags, params from the config sections they read, the feature store as
their dataset input and the resolved config; each kind then logs only what is its own.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import mlflow
import numpy as np
import pandas as pd
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.data.sources import LocalArtifactDatasetSource
from mlflow.entities import Metric, Param

from ctt import plots
from ctt.config import Config, flatten, sections_of, to_dict
from ctt.experiment.tracking.connection import client, connect, context_tags
from ctt.prediction_files import predictions_frame
from featurize import dedup

log = logging.getLogger("ctt.tracking")
LEAKAGE_FILE = "leakage/leakage.json"


def run_name(cfg: Config, base: str) -> str:
    """`tracking.run_name` when set, else `<base>-<YYYYmmdd-HHMMSS>`."""
    return cfg.tracking.run_name or f"{base}-{time.strftime('%Y%m%d-%H%M%S')}"


def featurizer_params(settings: dict | None) -> dict[str, Any]:
    """A store's `_featurizer.json` as `featurizer.*` params: the settings that made the
    features, flattened (the runtime-only fields, recorded as null, are left out)."""
    flat = flatten((settings or {}).get("settings", {}), "featurizer.")
    return {k: v for k, v in flat.items() if v is not None}


@dataclass
class StoreInput:
    """A feature store as a run's dataset: its path, the settings that made it (its
    `_featurizer.json`) and its file names."""
    path: str
    settings: dict
    files: list[str]
    context: str = "training"             # MLflow's input context: training | output (featurize)


@contextlib.contextmanager
def record_run(kind: str, name: str, *, cfg: Config | None = None, job: str = "", experiment: str = "",
               params: dict[str, Any] | None = None, tags: dict[str, str] | None = None,
               store: StoreInput | None = None, resume: str = "", started: float | None = None) -> Iterator[str]:
    """A run named `name` (see `run_name`) of `experiment` (default `cfg.tracking.experiment`),
    active inside the block; its id. Recorded on the way in: tag `kind` (plus `tags`), params
    (the config sections `job` reads, the store's featurizer settings as `featurizer.*`, then
    `params`), the store as the dataset input, the resolved config. A `resume`d run keeps
    what it has. `started` (epoch seconds): when the work began, for a run recorded after it
    (its MLflow duration then covers the whole job). It ends FINISHED, or FAILED on an exception."""
    experiment = experiment or cfg.tracking.experiment
    with open_run(experiment, name, {"kind": kind} | (tags or {}), resume, started) as run_id:
        if not resume:
            log_params(run_id, (flatten(sections_of(cfg, job)) if cfg is not None else {})
                       | featurizer_params(store.settings if store else None) | (params or {}))
            if store is not None:
                log_store_input(store)
                log_leakage(run_id, store.path)
            if cfg is not None:
                log_dict(run_id, to_dict(cfg), "config/resolved_config.json")
        yield run_id


@contextlib.contextmanager
def open_run(experiment: str, run_name: str, tags: dict[str, str], resume: str = "",
             started: float | None = None) -> Iterator[str]:
    """A new run of `experiment` (or the run `resume`, reopened), active inside the block
    (models log into it); its id. `started`: its start time, when earlier than now. It ends
    FINISHED, or FAILED on an exception."""
    exp_id = connect(experiment)
    if started is not None and not resume:
        resume = client().create_run(exp_id, start_time=int(started * 1000), run_name=run_name).info.run_id
    with mlflow.start_run(run_id=resume or None, run_name=None if resume else run_name,
                          experiment_id=exp_id) as run:
        mlflow.set_tags(context_tags() | tags)
        yield run.info.run_id


def log_store_input(s: StoreInput) -> str:
    """Into the active run: the feature store as an MLflow dataset input (the runs table's
    Dataset column), its digest over the featurizer settings and the store's file names
    (content-addressed by trailer ids, so another set of trailers is another digest)."""
    digest = hashlib.sha1(json.dumps(s.settings, sort_keys=True).encode() + "\n".join(sorted(s.files)).encode())
    source = resolve_dataset_source(s.path) if "://" in s.path else LocalArtifactDatasetSource(s.path)
    dataset = MetaDataset(source=source, name=s.path.rstrip("/").rsplit("/", 1)[-1], digest=digest.hexdigest()[:16])
    mlflow.log_input(dataset, context=s.context)
    return dataset.digest


def log_leakage(run_id: str, store_path: str) -> None:
    """Whether the store has a near-duplicate table (`jobs/dedup.py`) and how many of its
    groups the store's splits divide (param `leakage.dedup_table`, metric
    `leakage_groups_straddling`), with the divided groups' trailers (`leakage/leakage.json`)
    for the report to leave out."""
    try:
        leak = dedup.store_leakage(store_path)
    except (OSError, ValueError) as e:      # an unreachable bucket, a table being written: recorded as unknown
        log.warning("no leakage count for %s: %s", store_path, e)
        return
    log_params(run_id, {"leakage.dedup_table": leak["dedup_table"]})
    if leak["dedup_table"]:
        log_metrics(run_id, {"leakage_groups_straddling": float(leak["groups_straddling"])})
        log_dict(run_id, leak, LEAKAGE_FILE)


def _param_value(v: Any) -> str:
    s = json.dumps(v) if isinstance(v, (list, dict)) else str(v)
    return s[:6000]


def log_params(run_id: str, params: dict[str, Any]) -> None:
    items = [Param(k, _param_value(v)) for k, v in params.items()]
    for i in range(0, len(items), 100):          # the server takes at most 100 params a batch
        client().log_batch(run_id, params=items[i:i + 100])


def set_tag(run_id: str, key: str, value: str) -> None:
    client().set_tag(run_id, key, value)


def log_metrics(run_id: str, metrics: dict[str, float], step: int | None = None, at: float | None = None) -> None:
    """Per-epoch curves from the rank-0 worker, straight to the run (no active run needed);
    `at`: when the values were measured (epoch time), default now."""
    ts = int((at or time.time()) * 1000)
    # NaN is kept: a genre with no positive test trailer has no AU(PRC), and the run should say so.
    items = [Metric(k, float(v), ts, step or 0) for k, v in metrics.items() if v is not None]
    if items:
        client().log_batch(run_id, metrics=items)


def log_dict(run_id: str, obj: dict, path: str) -> None:
    client().log_dict(run_id, obj, path)


def log_table(run_id: str, df: pd.DataFrame, path: str) -> None:
    """A DataFrame as a CSV artifact at `path`."""
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / Path(path).name
        df.to_csv(local, index=False)
        client().log_artifact(run_id, str(local), str(Path(path).parent))


def log_files(run_id: str, paths: list[Path], folder: str) -> None:
    for p in paths:
        client().log_artifact(run_id, str(p), folder)


def log_predictions(run_id: str, split: str, trailer_ids: list[str], y_true: np.ndarray, probs: np.ndarray) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{split}_predictions.csv"
        predictions_frame(trailer_ids, probs, y_true).to_csv(path, index=False)
        client().log_artifact(run_id, str(path), "predictions")


def log_thresholds(run_id: str, thresholds: dict[str, float]) -> None:
    """Per-genre decision thresholds as `model/thresholds.json` (what predict applies)."""
    client().log_dict(run_id, thresholds, "model/thresholds.json")


def log_evaluation(run_id: str, split: str, trailer_ids: list[str], y_true: np.ndarray, probs: np.ndarray,
                   metrics: dict[str, float], extra: dict[str, Any] | None = None) -> None:
    """Final metrics plus the artifacts: predictions CSV, metrics JSON, PR-curve PNG."""
    log_metrics(run_id, metrics)
    log_predictions(run_id, split, trailer_ids, y_true, probs)
    payload = {"metrics": metrics, "num_trailers": len(trailer_ids)} | (extra or {})
    client().log_dict(run_id, json.loads(json.dumps(payload, default=float)), f"metrics/{split}_metrics.json")
    for name, fig in (("pr_curves", plots.pr_figure({"this run": (y_true, probs)}, f"{split} precision-recall")),
                      ("reliability", plots.reliability_figure({"this run": (y_true, probs)}, f"{split} calibration"))):
        client().log_figure(run_id, fig, f"plots/{split}_{name}.png")
        plots.plt.close(fig)

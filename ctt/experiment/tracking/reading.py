"""Reading runs back: finding them, their state for a resume, their logged predictions,
thresholds, metric curves and artifact folders."""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from ctt.experiment.tracking.connection import check_reachable, client, tracking_uri
from ctt.prediction_files import frame_arrays


class ModelNotFound(LookupError):
    pass


@dataclass
class RunState:
    """A run as `jobs/train.py --resume` needs it."""
    run_id: str
    experiment: str
    status: str
    params: dict[str, str]
    config: dict


def run_state(run_id: str) -> RunState:
    """A training run's status, params and resolved config (its `config/resolved_config.json`)."""
    check_reachable(tracking_uri())
    c = client()
    try:
        run = c.get_run(run_id)
        with tempfile.TemporaryDirectory() as tmp:
            config = json.loads(Path(c.download_artifacts(run_id, "config/resolved_config.json", tmp)).read_text())
    except Exception as e:
        raise ModelNotFound(f"no training run {run_id!r} to resume at {tracking_uri()} ({type(e).__name__}: {e})") from e
    experiment = c.get_experiment(run.info.experiment_id).name
    return RunState(run_id, experiment, run.info.status, dict(run.data.params), config)


@dataclass
class RunRecord:
    run_id: str
    name: str
    tags: dict[str, str]
    metrics: dict[str, float]
    params: dict[str, str]


class BadFilter(ValueError):
    """A run filter MLflow cannot parse (a usage error)."""


def find_runs(experiment: str, filter_string: str = "", max_results: int = 1000) -> list[RunRecord]:
    """Finished runs of an experiment matching an MLflow search expression, newest first."""
    check_reachable(tracking_uri())
    c = client()
    exp = c.get_experiment_by_name(experiment)
    if exp is None:
        raise LookupError(f"no MLflow experiment named {experiment!r} at {tracking_uri()}")
    query = " and ".join(q for q in ("attributes.status = 'FINISHED'", filter_string) if q)
    try:
        runs = c.search_runs([exp.experiment_id], query, order_by=["attributes.start_time DESC"],
                                  max_results=max_results)
    except mlflow.exceptions.MlflowException as e:
        if filter_string and "INVALID_PARAMETER_VALUE" in str(getattr(e, "error_code", "")):
            raise BadFilter(f"not an MLflow search expression: {filter_string!r} ({e.message})") from e
        raise
    return [RunRecord(r.info.run_id, r.info.run_name, dict(r.data.tags), dict(r.data.metrics), dict(r.data.params))
            for r in runs]


def get_runs(run_ids: list[str]) -> list[RunRecord]:
    """The named runs, in the order given (LookupError for an id the server does not know)."""
    check_reachable(tracking_uri())
    out = []
    for rid in run_ids:
        try:
            r = client().get_run(rid)
        except Exception as e:
            raise LookupError(f"no MLflow run {rid!r} at {tracking_uri()} ({type(e).__name__})") from e
        out.append(RunRecord(r.info.run_id, r.info.run_name, dict(r.data.tags), dict(r.data.metrics),
                             dict(r.data.params)))
    return out


def read_thresholds(run_id: str) -> dict[str, float]:
    """A run's `model/thresholds.json` ({} for a run that chose none: decisions at 0.5)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client().download_artifacts(run_id, "model/thresholds.json", tmp)
        except Exception:
            return {}
        return {k: float(v) for k, v in json.loads(Path(path).read_text()).items()}


def read_json(run_id: str, path: str) -> dict | None:
    """A run's JSON artifact at `path`, None when it has none."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client().download_artifacts(run_id, path, tmp)
        except Exception:
            return None
        return json.loads(Path(local).read_text())


def read_predictions(run_id: str, split: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """A run's logged `predictions/<split>_predictions.csv` -> (ids, labels, probabilities)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client().download_artifacts(run_id, f"predictions/{split}_predictions.csv", tmp)
        except Exception as e:
            raise FileNotFoundError(f"run {run_id} has no {split} predictions ({type(e).__name__}: {e})") from e
        return frame_arrays(pd.read_csv(path, dtype={"trailer_id": str}))


def metric_history(run_id: str, key: str) -> list[tuple[int, int, float]]:
    """(step, timestamp ms, value) of every logged value of a metric."""
    return [(m.step, m.timestamp, m.value) for m in client().get_metric_history(run_id, key)]


def download(run_id: str, folders: tuple[str, ...], dest: Path) -> Path:
    """A run's artifact folders into `dest`."""
    for sub in folders:
        try:
            client().download_artifacts(run_id, sub, str(dest))
        except Exception as e:
            raise ModelNotFound(f"run {run_id}: cannot read its {sub}/ artifacts ({type(e).__name__}: {e})") from e
    return dest

"""MLflow: where runs go, and what a run records (SPEC section 3, "MLflow").

With MLFLOW_TRACKING_URI unset, runs go to a local store in the project folder
(`mlruns/mlflow.db`, artifacts under `mlruns/artifacts`), whatever the working
directory; a tracking server is used as soon as the variable names one.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ctt.genres import GENRES

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class TrackingUnavailable(RuntimeError):
    pass


def tracking_uri() -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    (PROJECT_ROOT / "mlruns").mkdir(exist_ok=True)
    return f"sqlite:///{PROJECT_ROOT / 'mlruns' / 'mlflow.db'}"


def _artifact_root() -> str | None:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return None                               # the server decides
    return (PROJECT_ROOT / "mlruns" / "artifacts").as_uri()


def probe(uri: str, timeout: float = 5.0) -> None:
    """One direct request to an MLflow server: the client's own retries take minutes to give up."""
    import urllib.error
    import urllib.request
    if not uri.startswith(("http://", "https://")):
        return
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}) if "127.0.0.1" in uri or "localhost" in uri
                                         else urllib.request.ProxyHandler())
    try:
        opener.open(uri.rstrip("/") + "/health", timeout=timeout)
    except urllib.error.HTTPError:
        return                                    # it answered (auth, or no /health): reachable
    except (urllib.error.URLError, OSError) as e:
        raise TrackingUnavailable(f"MLflow tracking at {uri} is not reachable: {getattr(e, 'reason', e)}") from e


def connect(experiment: str) -> str:
    """Point MLflow at the tracking store and the experiment; fail fast if unreachable."""
    import mlflow
    uri = tracking_uri()
    probe(uri)
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(uri)
    try:
        exp = client.get_experiment_by_name(experiment)
        exp_id = exp.experiment_id if exp else client.create_experiment(experiment, artifact_location=_artifact_root())
    except Exception as e:
        raise TrackingUnavailable(f"MLflow tracking at {uri} is not reachable: {type(e).__name__}: {e}") from e
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def _param_value(v: Any) -> str:
    s = json.dumps(v) if isinstance(v, (list, dict)) else str(v)
    return s[:6000]


def log_params(run_id: str, params: dict[str, Any]) -> None:
    import mlflow
    from mlflow.entities import Param
    client = mlflow.MlflowClient(tracking_uri())
    items = [Param(k, _param_value(v)) for k, v in params.items()]
    for i in range(0, len(items), 100):
        client.log_batch(run_id, params=items[i:i + 100])


def set_tag(run_id: str, key: str, value: str) -> None:
    import mlflow
    mlflow.MlflowClient(tracking_uri()).set_tag(run_id, key, value)


def log_metrics(run_id: str, metrics: dict[str, float], step: int | None = None) -> None:
    """Per-epoch curves from the rank-0 worker, straight to the run (no active run needed)."""
    import mlflow
    from mlflow.entities import Metric
    ts = int(time.time() * 1000)
    # NaN is kept: a genre with no positive test trailer has no AU(PRC), and the run should say so.
    items = [Metric(k, float(v), ts, step or 0) for k, v in metrics.items() if v is not None]
    if items:
        mlflow.MlflowClient(tracking_uri()).log_batch(run_id, metrics=items)


def predictions_frame(trailer_ids: list[str], probs: np.ndarray, y_true: np.ndarray | None = None) -> pd.DataFrame:
    """trailer_id, one probability column per genre, and (when known) the true genres as `a|b`."""
    df = pd.DataFrame(probs, columns=list(GENRES))
    df.insert(0, "trailer_id", trailer_ids)
    if y_true is not None:
        df["true_genres"] = ["|".join(g for g, v in zip(GENRES, row) if v > 0.5) for row in y_true]
    return df


def frame_arrays(df: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray]:
    """A predictions frame -> (trailer ids, labels (N, C), probabilities (N, C))."""
    from ctt.genres import multi_hot, parse_genres
    y = multi_hot(parse_genres(g) for g in df["true_genres"].fillna(""))
    return df["trailer_id"].astype(str).tolist(), y, df[list(GENRES)].to_numpy(np.float64)


def log_predictions(run_id: str, split: str, trailer_ids: list[str], y_true: np.ndarray, probs: np.ndarray) -> None:
    import mlflow
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{split}_predictions.csv"
        predictions_frame(trailer_ids, probs, y_true).to_csv(path, index=False)
        mlflow.MlflowClient(tracking_uri()).log_artifact(run_id, str(path), "predictions")


def log_thresholds(run_id: str, y_val: np.ndarray, probs_val: np.ndarray) -> dict[str, float]:
    """Per-genre F1-best thresholds on validation, as `model/thresholds.json` (used by predict)."""
    import mlflow

    from ctt.thresholds import best_f1_thresholds
    th = best_f1_thresholds(y_val, probs_val)
    mlflow.MlflowClient(tracking_uri()).log_dict(run_id, th, "model/thresholds.json")
    return th


def read_predictions(run_id: str, split: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """A run's logged `predictions/<split>_predictions.csv` -> (ids, labels, probabilities)."""
    import mlflow
    client = mlflow.MlflowClient(tracking_uri())
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, f"predictions/{split}_predictions.csv", tmp)
        except Exception as e:
            raise FileNotFoundError(f"run {run_id} has no {split} predictions ({type(e).__name__}: {e})") from e
        return frame_arrays(pd.read_csv(path, dtype={"trailer_id": str}))


def pr_curve_figure(y_true: np.ndarray, probs: np.ndarray, title: str):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ctt.metrics import per_genre_auprc, pr_curves
    aps = per_genre_auprc(y_true, probs)
    fig, ax = plt.subplots(figsize=(7, 6))
    for name, (r, p) in pr_curves(y_true, probs).items():
        label = f"{name} (AP {aps[name]:.2f})" if name in aps else name
        ax.plot(r, p, lw=2.5 if name == "micro" else 1.2, ls="-" if name == "micro" else "--", label=label)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=title)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def log_evaluation(run_id: str, split: str, trailer_ids: list[str], y_true: np.ndarray, probs: np.ndarray,
                   metrics: dict[str, float], extra: dict[str, Any] | None = None) -> None:
    """Final metrics plus the artifacts: predictions CSV, metrics JSON, PR-curve PNG."""
    import matplotlib.pyplot as plt
    import mlflow
    client = mlflow.MlflowClient(tracking_uri())
    log_metrics(run_id, metrics)
    log_predictions(run_id, split, trailer_ids, y_true, probs)
    with tempfile.TemporaryDirectory() as tmp:
        payload = {"metrics": metrics, "num_trailers": len(trailer_ids)} | (extra or {})
        (Path(tmp) / f"{split}_metrics.json").write_text(json.dumps(payload, indent=2, sort_keys=True, default=float))
        client.log_artifact(run_id, str(Path(tmp) / f"{split}_metrics.json"), "metrics")
        fig = pr_curve_figure(y_true, probs, f"{split} precision-recall")
        client.log_figure(run_id, fig, f"plots/{split}_pr_curves.png")
        plt.close(fig)


def log_torch_model(model, model_config: dict[str, Any]) -> str:
    """Into the active run: the model as an MLflow LoggedModel (eager nn.Module, loadable with
    mlflow.pytorch.load_model) plus `model/state_dict.pt` and `model/model_config.json`."""
    import mlflow
    import torch
    info = mlflow.pytorch.log_model(model, name="model", serialization_format="pickle",
                                    code_paths=[str(PROJECT_ROOT / "ctt")])
    with tempfile.TemporaryDirectory() as tmp:
        torch.save(model.state_dict(), Path(tmp) / "state_dict.pt")
        (Path(tmp) / "model_config.json").write_text(json.dumps(model_config, indent=2))
        mlflow.log_artifacts(tmp, "model")
    return info.model_uri


def register(model_uri: str, run_id: str, name: str, alias: str, featurizer: dict, thresholds: dict) -> dict:
    """A Model Registry version of a logged model, carrying what predict needs as tags."""
    import mlflow
    client = mlflow.MlflowClient(tracking_uri())
    tags = {"run_id": run_id, "genres": ",".join(GENRES), "thresholds": json.dumps(thresholds),
            "featurizer": json.dumps(featurizer, sort_keys=True)[:7900]}
    mv = mlflow.register_model(model_uri, name, tags=tags)
    if alias:
        client.set_registered_model_alias(name, alias, mv.version)
    return {"name": name, "version": mv.version, "alias": alias or None}

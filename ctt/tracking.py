"""MLflow, the only door to it: where runs go, what a run records (SPEC section 3,
"MLflow"), and finding and reading runs back.

With MLFLOW_TRACKING_URI unset, runs go to a local store in the project folder
(`mlruns/mlflow.db`, artifacts under `mlruns/artifacts`), whatever the working
directory; a tracking server is used as soon as the variable names one.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
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
from mlflow.models import ModelSignature
from mlflow.types.schema import Array, ColSpec, ParamSchema, ParamSpec, Schema

from ctt import plots, serving
from ctt.predictor import NotAGenreModel, Predictor, load_bundle
from ctt.thresholds import best_f1_thresholds
from featurize.genres import GENRES, multi_hot, parse_genres

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# What kind of experiment this is, for the MLflow API and the UIs that read it. The 3.17 UI
# picks its view from a `workflowType` switch instead (default GenAI traces): `ui_links`
# gives links that open the "Model training" runs table.
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}
UI_VIEW = "workflowType=machine_learning"


class TrackingUnavailable(RuntimeError):
    pass


class ModelNotFound(LookupError):
    pass


def tracking_uri() -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    if _ray_submission_id():        # the project folder is Ray's temporary copy, which Ray may remove
        raise TrackingUnavailable("a Ray job needs MLFLOW_TRACKING_URI in its runtime env "
                                  "(cluster/runtime_env.yaml): its working dir is temporary")
    (PROJECT_ROOT / "mlruns").mkdir(exist_ok=True)
    return f"sqlite:///{PROJECT_ROOT / 'mlruns' / 'mlflow.db'}"


def _artifact_root() -> str | None:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return None                               # the server decides
    return (PROJECT_ROOT / "mlruns" / "artifacts").as_uri()


def _client() -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri())


def probe(uri: str, timeout: float = 5.0) -> None:
    """One direct request to an MLflow server: the client's own retries take minutes to give up."""
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
    uri = tracking_uri()
    probe(uri)
    mlflow.set_tracking_uri(uri)
    client = _client()
    try:
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            exp_id = client.create_experiment(experiment, artifact_location=_artifact_root(), tags=EXPERIMENT_TAGS)
        else:
            exp_id = exp.experiment_id
            for k, v in EXPERIMENT_TAGS.items():
                if exp.tags.get(k) != v:
                    client.set_experiment_tag(exp_id, k, v)
    except Exception as e:
        raise TrackingUnavailable(f"MLflow tracking at {uri} is not reachable: {type(e).__name__}: {e}") from e
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def _git_commit() -> str:
    if not (PROJECT_ROOT / ".git").exists():           # a Ray job's working dir comes without .git
        return ""
    out = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else ""


def _ray_submission_id() -> str:
    """The `ray job submit` id of this driver, from the job config Ray hands it."""
    config = json.loads(os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR") or "{}")
    return (config.get("metadata") or {}).get("job_submission_id", "")


def context_tags() -> dict[str, str]:
    """Where a run comes from: the code's git commit, the Ray job it ran as (when known)."""
    tags = {"mlflow.source.git.commit": _git_commit(), "ray.job_submission_id": _ray_submission_id()}
    return {k: v for k, v in tags.items() if v}


@contextlib.contextmanager
def open_run(experiment: str, run_name: str, tags: dict[str, str], resume: str = "") -> Iterator[str]:
    """A new run of `experiment` (or the run `resume`, reopened), active inside the block
    (models log into it); its id. It ends FINISHED, or FAILED on an exception."""
    exp_id = connect(experiment)
    with mlflow.start_run(run_id=resume or None, run_name=None if resume else run_name,
                          experiment_id=exp_id) as run:
        mlflow.set_tags(context_tags() | tags)
        yield run.info.run_id


def ui_links(run_id: str) -> dict[str, str]:
    """The run's page and its experiment's runs table in the MLflow UI ({} without a server)."""
    uri = tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return {}
    exp = _client().get_run(run_id).info.experiment_id
    base = f"{uri.rstrip('/')}/#/experiments/{exp}"
    return {"experiment_url": f"{base}/runs?{UI_VIEW}", "run_url": f"{base}/runs/{run_id}?{UI_VIEW}"}


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
    probe(tracking_uri())
    client = _client()
    try:
        run = client.get_run(run_id)
        with tempfile.TemporaryDirectory() as tmp:
            config = json.loads(Path(client.download_artifacts(run_id, "config/resolved_config.json", tmp)).read_text())
    except Exception as e:
        raise ModelNotFound(f"no training run {run_id!r} to resume at {tracking_uri()} ({type(e).__name__}: {e})") from e
    experiment = client.get_experiment(run.info.experiment_id).name
    return RunState(run_id, experiment, run.info.status, dict(run.data.params), config)


def log_store_input(store_path: str, settings: dict, files: list[str], context: str = "training") -> str:
    """Into the active run: the feature store as an MLflow dataset input (the runs table's
    Dataset column), its digest over the featurizer settings and the store's file names
    (content-addressed by trailer ids, so another set of trailers is another digest)."""
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode() + "\n".join(sorted(files)).encode())
    source = resolve_dataset_source(store_path) if "://" in store_path else LocalArtifactDatasetSource(store_path)
    dataset = MetaDataset(source=source, name=store_path.rstrip("/").rsplit("/", 1)[-1],
                          digest=digest.hexdigest()[:16])
    mlflow.log_input(dataset, context=context)
    return dataset.digest


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
    probe(tracking_uri())
    client = _client()
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise LookupError(f"no MLflow experiment named {experiment!r} at {tracking_uri()}")
    query = " and ".join(q for q in ("attributes.status = 'FINISHED'", filter_string) if q)
    try:
        runs = client.search_runs([exp.experiment_id], query, order_by=["attributes.start_time DESC"],
                                  max_results=max_results)
    except mlflow.exceptions.MlflowException as e:
        if filter_string and "INVALID_PARAMETER_VALUE" in str(getattr(e, "error_code", "")):
            raise BadFilter(f"not an MLflow search expression: {filter_string!r} ({e.message})") from e
        raise
    return [RunRecord(r.info.run_id, r.info.run_name, dict(r.data.tags), dict(r.data.metrics), dict(r.data.params))
            for r in runs]


def get_runs(run_ids: list[str]) -> list[RunRecord]:
    """The named runs, in the order given (LookupError for an id the server does not know)."""
    probe(tracking_uri())
    out = []
    for rid in run_ids:
        try:
            r = _client().get_run(rid)
        except Exception as e:
            raise LookupError(f"no MLflow run {rid!r} at {tracking_uri()} ({type(e).__name__})") from e
        out.append(RunRecord(r.info.run_id, r.info.run_name, dict(r.data.tags), dict(r.data.metrics),
                             dict(r.data.params)))
    return out


def read_thresholds(run_id: str) -> dict[str, float]:
    """A run's `model/thresholds.json` ({} for a run that chose none: decisions at 0.5)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = _client().download_artifacts(run_id, "model/thresholds.json", tmp)
        except Exception:
            return {}
        return {k: float(v) for k, v in json.loads(Path(path).read_text()).items()}


def _param_value(v: Any) -> str:
    s = json.dumps(v) if isinstance(v, (list, dict)) else str(v)
    return s[:6000]


def log_params(run_id: str, params: dict[str, Any]) -> None:
    items = [Param(k, _param_value(v)) for k, v in params.items()]
    for i in range(0, len(items), 100):          # the server takes at most 100 params a batch
        _client().log_batch(run_id, params=items[i:i + 100])


def set_tag(run_id: str, key: str, value: str) -> None:
    _client().set_tag(run_id, key, value)


def log_metrics(run_id: str, metrics: dict[str, float], step: int | None = None, at: float | None = None) -> None:
    """Per-epoch curves from the rank-0 worker, straight to the run (no active run needed);
    `at`: when the values were measured (epoch time), default now."""
    ts = int((at or time.time()) * 1000)
    # NaN is kept: a genre with no positive test trailer has no AU(PRC), and the run should say so.
    items = [Metric(k, float(v), ts, step or 0) for k, v in metrics.items() if v is not None]
    if items:
        _client().log_batch(run_id, metrics=items)


def metric_history(run_id: str, key: str) -> list[tuple[int, int, float]]:
    """(step, timestamp ms, value) of every logged value of a metric."""
    return [(m.step, m.timestamp, m.value) for m in _client().get_metric_history(run_id, key)]


def log_dict(run_id: str, obj: dict, path: str) -> None:
    _client().log_dict(run_id, obj, path)


def log_table(run_id: str, df: pd.DataFrame, path: str) -> None:
    """A DataFrame as a CSV artifact at `path`."""
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / Path(path).name
        df.to_csv(local, index=False)
        _client().log_artifact(run_id, str(local), str(Path(path).parent))


def log_files(run_id: str, paths: list[Path], folder: str) -> None:
    for p in paths:
        _client().log_artifact(run_id, str(p), folder)


def predictions_frame(trailer_ids: list[str], probs: np.ndarray, y_true: np.ndarray | None = None) -> pd.DataFrame:
    """trailer_id, one probability column per genre, and (when known) the true genres as `a|b`."""
    df = pd.DataFrame(probs, columns=list(GENRES))
    df.insert(0, "trailer_id", trailer_ids)
    if y_true is not None:
        df["true_genres"] = ["|".join(g for g, v in zip(GENRES, row) if v > 0.5) for row in y_true]
    return df


def frame_arrays(df: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray]:
    """A predictions frame -> (trailer ids, labels (N, C), probabilities (N, C))."""
    y = multi_hot(parse_genres(g) for g in df["true_genres"].fillna(""))
    return df["trailer_id"].astype(str).tolist(), y, df[list(GENRES)].to_numpy(np.float64)


def log_predictions(run_id: str, split: str, trailer_ids: list[str], y_true: np.ndarray, probs: np.ndarray) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{split}_predictions.csv"
        predictions_frame(trailer_ids, probs, y_true).to_csv(path, index=False)
        _client().log_artifact(run_id, str(path), "predictions")


def log_thresholds(run_id: str, y_val: np.ndarray, probs_val: np.ndarray) -> dict[str, float]:
    """Per-genre F1-best thresholds on validation, as `model/thresholds.json` (used by predict)."""
    th = best_f1_thresholds(y_val, probs_val)
    _client().log_dict(run_id, th, "model/thresholds.json")
    return th


def read_predictions(run_id: str, split: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """A run's logged `predictions/<split>_predictions.csv` -> (ids, labels, probabilities)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = _client().download_artifacts(run_id, f"predictions/{split}_predictions.csv", tmp)
        except Exception as e:
            raise FileNotFoundError(f"run {run_id} has no {split} predictions ({type(e).__name__}: {e})") from e
        return frame_arrays(pd.read_csv(path, dtype={"trailer_id": str}))


def log_evaluation(run_id: str, split: str, trailer_ids: list[str], y_true: np.ndarray, probs: np.ndarray,
                   metrics: dict[str, float], extra: dict[str, Any] | None = None) -> None:
    """Final metrics plus the artifacts: predictions CSV, metrics JSON, PR-curve PNG."""
    log_metrics(run_id, metrics)
    log_predictions(run_id, split, trailer_ids, y_true, probs)
    payload = {"metrics": metrics, "num_trailers": len(trailer_ids)} | (extra or {})
    _client().log_dict(run_id, json.loads(json.dumps(payload, default=float)), f"metrics/{split}_metrics.json")
    for name, fig in (("pr_curves", plots.pr_figure({"this run": (y_true, probs)}, f"{split} precision-recall")),
                      ("reliability", plots.reliability_figure({"this run": (y_true, probs)}, f"{split} calibration"))):
        _client().log_figure(run_id, fig, f"plots/{split}_{name}.png")
        plots.plt.close(fig)


SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "trailer_id", required=False), ColSpec("string", "path", required=False),
                   ColSpec(Array(Array("double")), "frames", required=False),
                   ColSpec(Array(Array("double")), "spectrograms", required=False)]),
    outputs=Schema([ColSpec("string", "trailer_id")] + [ColSpec("double", g) for g in GENRES]
                   + [ColSpec(Array("string"), "genres"), ColSpec("string", "error"),
                      ColSpec("string", "evidence", required=False)]),
    params=ParamSchema([ParamSpec("evidence", "boolean", False)]))


class GenreModel(mlflow.pyfunc.PythonModel):
    """The pyfunc wrapper of a `ctt.serving.Served` predictor (no state until `load_context`)."""

    def load_context(self, context) -> None:
        self.served = serving.Served(load_bundle(Path(context.artifacts["bundle"]), "pyfunc"))

    @property
    def predictor(self) -> Predictor:
        return self.served.predictor

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return serving.score_frame(self.served, model_input, evidence=bool((params or {}).get("evidence", False)))


def log_servable(predictor: Predictor) -> str:
    """Into the active run: the predictor as a pyfunc model (`model`); its models:/ URI."""
    with tempfile.TemporaryDirectory() as tmp:
        bundle = predictor.save(Path(tmp) / "bundle")
        info = mlflow.pyfunc.log_model(
            name=serving.ARTIFACT, python_model=GenreModel(), artifacts={"bundle": str(bundle)},
            code_paths=[str(PROJECT_ROOT / "ctt"), str(PROJECT_ROOT / "featurize")],
            signature=SIGNATURE, input_example=serving.input_example(predictor),
            pip_requirements=serving.requirements(predictor.featurizer))
    return info.model_uri


def load_servable(ref: str) -> Predictor:
    """A model reference -> its predictor, loaded through MLflow's pyfunc loader."""
    uri = serving.model_uri(ref)
    try:
        model = mlflow.pyfunc.load_model(uri)
    except Exception as e:
        raise NotAGenreModel(f"no CTT-MMC pyfunc model at {uri} ({type(e).__name__}: {str(e)[:300]}); "
                             "baselines log no model") from e
    python_model = model.unwrap_python_model()
    if not isinstance(python_model, GenreModel):
        raise NotAGenreModel(f"{uri} is an MLflow model but not a CTT-MMC genre model")
    python_model.predictor.source = ref
    return python_model.predictor


def register(model_uri: str, run_id: str, name: str, alias: str, featurizer: dict, thresholds: dict) -> dict:
    """A Model Registry version of a logged model, carrying what predict needs as tags."""
    tags = {"run_id": run_id, "genres": ",".join(GENRES), "thresholds": json.dumps(thresholds),
            "featurizer": json.dumps(featurizer, sort_keys=True)[:7900]}
    mv = mlflow.register_model(model_uri, name, tags=tags)
    if alias:
        _client().set_registered_model_alias(name, alias, mv.version)
    return {"name": name, "version": mv.version, "alias": alias or None}


def resolve_model(ref: str) -> str:
    """A model reference (RUN_ID, runs:/RUN_ID[/...], models:/NAME/VERSION, models:/NAME@ALIAS)
    -> the MLflow run id behind it."""
    probe(tracking_uri())
    client = _client()
    m = re.fullmatch(r"models:/([^/@]+)(?:/(\d+)|@([\w-]+))", ref)
    try:
        if m:
            name, version, alias = m.groups()
            mv = client.get_model_version(name, version) if version else client.get_model_version_by_alias(name, alias)
            return mv.run_id
        run_id = ref[len("runs:/"):].split("/")[0] if ref.startswith("runs:/") else ref
        client.get_run(run_id)
        return run_id
    except Exception as e:
        raise ModelNotFound(f"no model {ref!r} at {tracking_uri()} ({type(e).__name__}: {e})") from e


def download(run_id: str, folders: tuple[str, ...], dest: Path) -> Path:
    """A run's artifact folders into `dest`."""
    for sub in folders:
        try:
            _client().download_artifacts(run_id, sub, str(dest))
        except Exception as e:
            raise ModelNotFound(f"run {run_id}: cannot read its {sub}/ artifacts ({type(e).__name__}: {e})") from e
    return dest

"""Where runs go: the tracking store, the experiment, and where a run comes from.

With MLFLOW_TRACKING_URI unset, runs go to a local store in the project folder
(`mlruns/mlflow.db`, artifacts under `mlruns/artifacts`), whatever the working
directory; a tracking server is used as soon as the variable names one.
"""
from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import mlflow

PROJECT_ROOT = Path(__file__).resolve().parents[3]

# What kind of experiment this is, for the MLflow API and the UIs that read it. The 3.17 UI
# picks its view from a `workflowType` switch instead (default GenAI traces): `ui_links`
# gives links that open the "Model training" runs table.
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}


UI_VIEW = "workflowType=machine_learning"


class TrackingUnavailable(RuntimeError):
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
    """Where a new experiment keeps its artifacts: a server decides for itself; a database
    file keeps them beside it (MLflow's default would be ./mlruns of whatever folder the job
    runs in)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri:
        return (PROJECT_ROOT / "mlruns" / "artifacts").as_uri()
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").as_uri()
    return None


def client() -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri())


def check_reachable(uri: str, timeout: float = 5.0) -> None:
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
    check_reachable(uri)
    mlflow.set_tracking_uri(uri)
    mlflow_client = client()
    try:
        exp = mlflow_client.get_experiment_by_name(experiment)
        if exp is None:
            exp_id = mlflow_client.create_experiment(experiment, artifact_location=_artifact_root(), tags=EXPERIMENT_TAGS)
        else:
            exp_id = exp.experiment_id
            for k, v in EXPERIMENT_TAGS.items():
                if exp.tags.get(k) != v:
                    mlflow_client.set_experiment_tag(exp_id, k, v)
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


def ui_links(run_id: str) -> dict[str, str]:
    """The run's page and its experiment's runs table in the MLflow UI ({} without a server)."""
    uri = tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return {}
    exp = client().get_run(run_id).info.experiment_id
    base = f"{uri.rstrip('/')}/#/experiments/{exp}"
    return {"experiment_url": f"{base}/runs?{UI_VIEW}", "run_url": f"{base}/runs/{run_id}?{UI_VIEW}"}

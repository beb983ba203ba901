"""The Model Registry: a logged model registered under a name and alias, and any model
reference (run id, runs:/, models:/NAME/VERSION, models:/NAME@ALIAS) resolved to its run."""
from __future__ import annotations

import json
import re

import mlflow

from ctt.experiment.tracking.connection import check_reachable, client, tracking_uri
from ctt.experiment.tracking.reading import ModelNotFound
from featurize.genres import GENRES


def register(model_uri: str, run_id: str, name: str, alias: str, featurizer: dict, thresholds: dict) -> dict:
    """A Model Registry version of a logged model, carrying what predict needs as tags."""
    tags = {"run_id": run_id, "genres": ",".join(GENRES), "thresholds": json.dumps(thresholds),
            "featurizer": json.dumps(featurizer, sort_keys=True)[:7900]}
    mv = mlflow.register_model(model_uri, name, tags=tags)
    if alias:
        client().set_registered_model_alias(name, alias, mv.version)
    return {"name": name, "version": mv.version, "alias": alias or None}


def _by_prefix(prefix: str) -> str:
    """The one run whose id starts with `prefix` (as the report prints ids: 8 characters)."""
    c = client()
    ids = [e.experiment_id for e in c.search_experiments()]
    found, token = set(), None
    while True:
        page = c.search_runs(ids, max_results=1000, page_token=token)
        found |= {r.info.run_id for r in page if r.info.run_id.startswith(prefix)}
        token = page.token
        if not token:
            break
    if len(found) != 1:
        raise ModelNotFound(f"{'no run' if not found else f'{len(found)} runs'} at {tracking_uri()} "
                            f"with an id starting {prefix!r}" + ("; give more of the id" if found else ""))
    return found.pop()


def resolve_model(ref: str) -> str:
    """A model reference (RUN_ID or a unique prefix of it, runs:/RUN_ID[/...],
    models:/NAME/VERSION, models:/NAME@ALIAS) -> the MLflow run id behind it."""
    check_reachable(tracking_uri())
    c = client()
    m = re.fullmatch(r"models:/([^/@]+)(?:/(\d+)|@([\w-]+))", ref)
    if re.fullmatch(r"[0-9a-f]{6,31}", ref):
        return _by_prefix(ref)
    try:
        if m:
            name, version, alias = m.groups()
            mv = c.get_model_version(name, version) if version else c.get_model_version_by_alias(name, alias)
            return mv.run_id
        run_id = ref[len("runs:/"):].split("/")[0] if ref.startswith("runs:/") else ref
        c.get_run(run_id)
        return run_id
    except Exception as e:
        raise ModelNotFound(f"no model {ref!r} at {tracking_uri()} ({type(e).__name__}: {e})") from e

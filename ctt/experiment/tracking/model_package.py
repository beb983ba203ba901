"""The servable model package: a trained predictor as an MLflow pyfunc model (artifact
`model`) with its signature, logged into a run and loaded back by reference. What the
model does once loaded is `ctt.serving`'s, with no MLflow in it."""
from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import Array, ColSpec, ParamSchema, ParamSpec, Schema

from ctt import serving
from ctt.experiment.tracking.connection import PROJECT_ROOT
from ctt.predictor import NotAGenreModel, Predictor, load_bundle
from featurize.genres import GENRES


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

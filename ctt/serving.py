"""What the servable model does, without MLflow: every train and fuse run logs a pyfunc model
(artifact `model`; its MLflow wrapper, signature and logging are in `ctt.experiment.tracking.model_package`) that
`mlflow.pyfunc.load_model`, `mlflow models serve` and batch scoring use as they use any
MLflow model, and `jobs/predict.py` loads too.

    model.predict(df)   df: one row per trailer, with a `path` (a video to featurize here,
                        as the training store was) or precomputed `frames` (t x feature_dim)
                        and/or `spectrograms` (s x 130*513 magnitudes); `trailer_id` optional
                     -> trailer_id, one probability column per genre, `genres` (predicted at
                        the run's per-genre thresholds), `error` ("" when scored)
    model.predict(df, params={"evidence": True})
                     -> and `evidence`: JSON per trailer, the shots (or audio windows) behind
                        each predicted genre, as in `jobs/predict.py`

The model holds the bundle of `ctt.predictor` (weights, configs, thresholds, featurizer
settings, both members of a fused run) and the project's code; a path is featurized in
the serving process (no Ray), with the backbone weights the featurizer settings name.
"""
from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ctt.predictor import Predictor, table_from_features
from ctt.thresholds import predicted_genres
from featurize.audio import SPEC_SIZE
from featurize import shot_detectors
from featurize.backbone_families import family_of
from featurize.backbone import FrameEmbedder
from featurize.extract import extract
from featurize.genres import GENRES
from featurize.settings import from_settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ARTIFACT = "model"
# What the served code imports (Ray is not among them); pinned to this environment's versions.
SERVING_REQUIREMENTS = ("torch", "torchvision", "numpy", "pandas", "pyarrow", "av", "librosa", "numba", "soxr",
                        "scipy", "scikit-learn", "fsspec", "s3fs", "matplotlib", "pyyaml", "mlflow")



def requirements(featurizer: dict[str, Any] | None = None) -> list[str]:
    """The pinned packages of the serving environment; `featurizer` (a store's recorded
    settings) adds the optional backbone family and shot detector it was made with."""
    s = (featurizer or {}).get("settings", featurizer or {})
    name = str(s.get("backbone", {}).get("name") or "resnet152")
    used = {family_of(name)[0].requirement, shot_detectors.get(s.get("shots", {}).get("detector", "hsv")).requirement}
    extra = sorted(r for r in used if r)
    return [f"{d}=={importlib.metadata.version(d)}" for d in (*SERVING_REQUIREMENTS, *extra)]


def _cells(df: pd.DataFrame, column: str) -> list[Any]:
    return list(df[column]) if column in df else [None] * len(df)


class Served:
    """A predictor being served: the backbone loads on the first request with paths."""

    def __init__(self, predictor: Predictor):
        self.predictor = predictor
        self.featurize_cfg = None
        self.embedder = None

    def featurize(self, ids: list[str], paths: list[str]):
        if self.embedder is None:
            self.featurize_cfg = from_settings(self.predictor.featurizer)
            self.embedder = FrameEmbedder(self.featurize_cfg.backbone)
        return extract([{"trailer_id": t, "path": p} for t, p in zip(ids, paths)], self.featurize_cfg, self.embedder)


def score_frame(model: Served, df: pd.DataFrame, evidence: bool = False) -> pd.DataFrame:
    """The pyfunc contract on one DataFrame (rows may mix paths and precomputed features);
    with `evidence`, an `evidence` column too: per trailer the JSON of `jobs/predict.py`'s
    evidence (for each predicted genre its strongest shots or audio windows)."""
    df = df.reset_index(drop=True)
    ids = [str(t) if t is not None and t == t else str(i)
           for i, t in enumerate(_cells(df, "trailer_id"))] if len(df) else []
    paths = [p if isinstance(p, str) and p else "" for p in _cells(df, "path")]
    pred: Predictor = model.predictor
    probs = np.full((len(df), len(GENRES)), np.nan)
    errors = [""] * len(df)
    by_id = {t: i for i, t in enumerate(ids)}
    if len(by_id) != len(ids):
        raise ValueError("trailer_id values must be unique")
    tables = []
    with_path = [i for i, p in enumerate(paths) if p]
    if with_path:
        table, failed = model.featurize([ids[i] for i in with_path], [paths[i] for i in with_path])
        tables.append(table)
        for f in failed:
            errors[by_id[f["trailer_id"]]] = f"{f['stage']}: {f['error_type']}: {f['message']}"
    rest = [i for i, p in enumerate(paths) if not p]
    if rest:
        tables.append(table_from_features([ids[i] for i in rest], [_cells(df, "frames")[i] for i in rest],
                                          [_cells(df, "spectrograms")[i] for i in rest], pred.feature_dim))
    found: list[dict] = [{} for _ in ids]
    for table in tables:
        if table.num_rows:
            rows = [by_id[t] for t in table.column("trailer_id").to_pylist()]
            probs[rows] = pred.probabilities(table)
            if evidence:
                for r, ev in zip(rows, pred.evidence(table, probs[rows], pred.thresholds)):
                    found[r] = ev
    for i in range(len(df)):
        if not errors[i] and np.isnan(probs[i]).any():
            errors[i] = "no input this model can read (an audio model needs a trailer with sound)"
    out = pd.DataFrame(probs, columns=list(GENRES))
    out.insert(0, "trailer_id", ids)
    genres = predicted_genres(np.nan_to_num(probs, nan=-1.0), pred.thresholds)
    out["genres"] = genres
    out["error"] = errors
    if evidence:
        out["evidence"] = [json.dumps(ev) for ev in found]
    return out


def input_example(predictor: Predictor) -> pd.DataFrame:
    """Zero features of the shapes the model reads: two keyframes and/or one spectrogram."""
    row: dict[str, Any] = {"trailer_id": "example"}
    if "visual" in predictor.members:
        row["frames"] = np.zeros((2, predictor.feature_dim), np.float32).tolist()
    if "audio" in predictor.members:
        row["spectrograms"] = np.zeros((1, SPEC_SIZE), np.float32).tolist()
    return pd.DataFrame([row])


def model_uri(ref: str) -> str:
    """RUN_ID | runs:/RUN_ID[/model] | models:/... | a local pyfunc model folder -> a URI pyfunc loads."""
    if Path(ref).is_dir() or ref.startswith("models:/"):
        return ref
    if ref.startswith("runs:/"):
        return ref if ref.rstrip("/").count("/") >= 2 else f"{ref.rstrip('/')}/{ARTIFACT}"
    return f"runs:/{ref}/{ARTIFACT}"

"""Classify new trailers with a trained model: featurize them exactly as its training data
was (the featurizer settings travel with the run), score them, apply per-genre thresholds.

    model reference: RUN_ID | runs:/RUN_ID | models:/NAME/VERSION | models:/NAME@ALIAS | a local
                     pyfunc model folder (`mlflow artifacts download` of a run's model)
    a visual run (ctt-a/b/c, lstm), an audio run (ctt-s), or a fused run (ctt-tn: both members)
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ctt import plots
from featurize import figures
from ctt.experiment.distributed.scoring import score_dataset
from ctt.predictor import NotAGenreModel, Predictor
from ctt.thresholds import predicted_genres
from ctt.experiment.tracking import model_package, registry
from ctt.experiment.tracking.reading import ModelNotFound
from featurize import store
from featurize.config import FeaturizeConfig
from featurize.genres import GENRES
from featurize.manifest import read_manifest
from featurize.pipeline import run_featurize
from featurize.settings import NotReproducible, from_settings

__all__ = ["ModelNotFound", "load_predictor", "plot_evidence", "plot_predictions", "run_predict"]
ROW_COLUMNS = ["trailer_id", "genres", "source_path", "frames", "frame_times", "spectrograms", "has_audio",
               "num_windows"]


def load_predictor(ref: str) -> Predictor:
    """A model reference -> its predictor, through the run's pyfunc model (`model_package.load_servable`)."""
    if not Path(ref).is_dir():
        run_id = registry.resolve_model(ref)   # an unknown run or model says so before anything loads
        if ref != run_id and run_id.startswith(ref):
            ref = run_id                       # a unique prefix, as the report prints run ids
    try:
        return model_package.load_servable(ref)
    except NotAGenreModel as e:
        raise ModelNotFound(str(e)) from None


def build_manifest(inputs: list[str], dest: Path) -> Path:
    """Video files, folders and manifests -> one manifest CSV (absolute paths, no labels)."""
    frames = []
    for item in inputs:
        if item.lower().endswith((".csv", ".parquet")) or Path(item).is_dir():
            frames.append(read_manifest(item)[["trailer_id", "path"]])
        else:
            p = item if "://" in item else str(Path(item).resolve())
            frames.append(pd.DataFrame({"trailer_id": [Path(item).stem], "path": [p]}))
    df = pd.concat(frames, ignore_index=True)
    dup = df.trailer_id.duplicated(keep=False)
    df.loc[dup, "trailer_id"] = df.loc[dup, "trailer_id"] + "#" + df.loc[dup].groupby("trailer_id").cumcount().astype(str)
    df["genres"], df["split"] = "", ""
    out = dest / "manifest.csv"
    df.to_csv(out, index=False)
    return out


def predictions_json(predictor: Predictor, ids: list[str], paths: list[str], probs: np.ndarray,
                     errors: pd.DataFrame, threshold: float | None = None,
                     evidence: list[dict] | None = None) -> dict[str, Any]:
    th = {g: threshold for g in GENRES} if threshold is not None else predictor.thresholds
    genres = predicted_genres(probs, th)
    evidence = evidence or [{} for _ in ids]
    return {
        "model": predictor.source, "members": {k: m.run_id or m.cfg.model.name for k, m in predictor.members.items()},
        "visual_weight": predictor.visual_weight if len(predictor.members) == 2 else None,
        "thresholds": th,
        "trailers": [{"trailer_id": t, "path": p, "probabilities": {g: round(float(v), 6) for g, v in zip(GENRES, row)},
                      "genres": gs, "evidence": {g: e for g, e in ev.items() if g != "why"}}
                     | ({"why": ev["why"]} if ev.get("why") else {})
                     for t, p, row, gs, ev in zip(ids, paths, probs, genres, evidence)],
        "errors": errors.to_dict("records"),
    }


class PredictBatch:
    """Ray Data map_batches callable: store rows -> trailer_id, path and one column per genre."""

    def __init__(self, ref: str):
        self.predictor = load_predictor(ref)

    def __call__(self, table: pa.Table) -> pa.Table:
        probs = self.predictor.probabilities(table)
        cols = {"trailer_id": table.column("trailer_id"), "path": table.column("source_path")}
        cols.update({g: pa.array(probs[:, c]) for c, g in enumerate(GENRES)})
        return pa.table(cols)


def _errors(store_path: str, want: set[str]) -> pd.DataFrame:
    if not store.error_ids(store_path):
        return pd.DataFrame(columns=store.ERROR_SCHEMA.names)
    errors = store.read_table(store_path.rstrip("/") + "/" + store.ERRORS_DIR).to_pandas()
    return errors[errors.trailer_id.isin(want)]


def run_predict(predictor: Predictor, inputs: list[str], store_path: str | None = None, output: str | None = None,
                threshold: float | None = None, base: FeaturizeConfig | None = None) -> dict[str, Any]:
    """Featurize `inputs` into `store_path` (a temp folder if None) and predict every trailer."""
    try:
        fcfg = from_settings(predictor.featurizer, base)
    except NotReproducible as e:
        raise ModelNotFound(str(e)) from None
    work = Path(tempfile.mkdtemp(prefix="ctt_predict_"))
    store_path = store_path or str(work / "store")
    manifest = build_manifest(inputs, work)
    summary = run_featurize(str(manifest), store_path, fcfg)
    want = set(pd.read_csv(manifest, dtype=str).trailer_id)
    errors = _errors(store_path, want)
    if output:
        score_dataset(store_path, ROW_COLUMNS, PredictBatch, (predictor.source,), output)
        return {"output": output, "featurize": summary, "errors": errors.to_dict("records")}
    th = {g: threshold for g in GENRES} if threshold is not None else predictor.thresholds
    ids, paths, probs, evidence = [], [], [], []
    rows = store.iter_batches(store_path, ROW_COLUMNS, batch_size=16) if store.files(store_path) else []
    for t in rows:                                  # no data files: every input is in `errors`
        t = t.filter(pa.array(np.isin(np.asarray(t.column("trailer_id").to_pylist(), dtype=object), list(want))))
        if t.num_rows:
            ids += t.column("trailer_id").to_pylist()
            paths += t.column("source_path").to_pylist()
            p = predictor.probabilities(t)
            probs.append(p)
            evidence += predictor.evidence(t, p, th)
    probs = np.concatenate(probs) if probs else np.zeros((0, len(GENRES)))
    order = np.argsort(ids, kind="stable")
    return predictions_json(predictor, [ids[i] for i in order], [paths[i] for i in order], probs[order],
                            errors, threshold, [evidence[i] for i in order])


def plot_predictions(result: dict, folder: Path) -> list[str]:
    """One Figure 7-style chart per trailer: probabilities, predicted genres dark, thresholds marked."""
    folder.mkdir(parents=True, exist_ok=True)
    cut = np.array([result["thresholds"][g] for g in GENRES])
    out = []
    for t in result["trailers"]:
        probs = np.array([[t["probabilities"][g] for g in GENRES]])
        dark = np.array([[g in t["genres"] for g in GENRES]])
        fig = plots.probability_bars([f"{t['trailer_id']}: {', '.join(t['genres']) or 'no genre'}"], probs, dark,
                                     cut, "", cols=1)
        path = folder / f"{t['trailer_id'].replace('/', '_')}.png"
        plots.save(fig, path)
        out.append(str(path))
    return out


def plot_evidence(result: dict, predictor: Predictor, folder: Path, base: FeaturizeConfig | None = None) -> list[str]:
    """Per trailer with keyframe evidence, a contact sheet of those keyframes (decoded again
    from the trailer as the model's store was made), labelled with genre, share and time."""
    from featurize.extract import decode      # lazy: PyAV and numba load only when pictures are asked for
    folder.mkdir(parents=True, exist_ok=True)
    fcfg = from_settings(predictor.featurizer, base)
    out = []
    for t in result["trailers"]:
        shots = [(g, e) for g, ev in t.get("evidence", {}).items() for e in ev if "shot" in e]
        if not shots:
            continue
        keyframes = decode(t["path"], fcfg).keyframes
        shots = [(g, e) for g, e in shots if e["shot"] <= len(keyframes)]          # shots count from 1
        fig = figures.contact_sheet(np.stack([keyframes[e["shot"] - 1] for _, e in shots]), [e["time_s"] for _, e in shots],
                                  f"{t['trailer_id']}: the shots behind each predicted genre", cols=3,
                                  labels=[f"{g} {e['share']:.0%} (shot {e['shot']})" for g, e in shots])
        path = folder / f"{t['trailer_id'].replace('/', '_')}_evidence.png"
        plots.save(fig, path)
        out.append(str(path))
    return out

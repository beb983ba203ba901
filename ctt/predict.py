"""Classify new trailers with a trained model: featurize them exactly as its training data
was (the featurizer settings travel with the run), score them, apply per-genre thresholds.

    model reference: RUN_ID | runs:/RUN_ID | models:/NAME/VERSION | models:/NAME@ALIAS | a folder
                     holding a run's `model/` and `config/` artifacts
    a visual run (ctt-a/b/c, lstm), an audio run (ctt-s), or a fused run (ctt-tn: both members)
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from ctt import plots, tracking
from ctt.config import AUDIO_MODELS, Config, ModelConfig, from_dict
from ctt.distributed import score_dataset
from ctt.evaluation import Scorer
from ctt.fusion import fuse
from ctt.models import build_model
from ctt.thresholds import DEFAULT, predicted_genres
from ctt.tracking import ModelNotFound
from featurize import store
from featurize.config import FeaturizeConfig
from featurize.genres import GENRES
from featurize.manifest import read_manifest
from featurize.pipeline import run_featurize
from featurize.settings import NotReproducible, from_settings

__all__ = ["ModelNotFound", "load_predictor", "plot_predictions", "run_predict"]
ROW_COLUMNS = ["trailer_id", "genres", "source_path", "frames", "spectrograms", "has_audio", "num_windows"]


@dataclass
class Member:
    """One trained network with the config it was trained and featurized with."""
    run_id: str
    cfg: Config
    scorer: Scorer
    featurizer: dict[str, Any]


@dataclass
class Predictor:
    source: str
    members: dict[str, Member]                      # "visual" and/or "audio"
    visual_weight: float = 1.0
    thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def featurizer(self) -> dict[str, Any]:
        return next(iter(self.members.values())).featurizer

    def probabilities(self, table: pa.Table) -> np.ndarray:
        """Store rows -> (N, C); a fused model keeps the visual probabilities where the audio
        member cannot read a trailer."""
        out = {k: m.scorer.where_readable(table) for k, m in self.members.items()}
        if set(out) == {"visual", "audio"}:
            return fuse(out["visual"], out["audio"], self.visual_weight)
        return next(iter(out.values()))


def load_member(folder: Path, run_id: str = "") -> Member:
    mc = json.loads((folder / "model" / "model_config.json").read_text())
    dim = int(mc.pop("feature_dim"))
    cfg = from_dict(json.loads((folder / "config" / "resolved_config.json").read_text()))
    cfg.model = ModelConfig(**mc)
    model = build_model(cfg.model, dim)
    model.load_state_dict(torch.load(folder / "model" / "state_dict.pt", map_location="cpu", weights_only=True))
    featurizer = json.loads((folder / "config" / "featurizer.json").read_text())
    return Member(run_id, cfg, Scorer(model, cfg.model, cfg.train.seed), featurizer)


def _thresholds(folder: Path) -> dict[str, float]:
    path = folder / "model" / "thresholds.json"
    return json.loads(path.read_text()) if path.exists() else {g: DEFAULT for g in GENRES}


def _run_folder(run_id: str, tmp: Path) -> Path:
    return tracking.download(run_id, ("model", "config"), tmp / run_id)


def load_predictor(ref: str) -> Predictor:
    tmp = Path(tempfile.mkdtemp(prefix="ctt_model_"))
    if Path(ref).is_dir():
        folder, run_id = Path(ref), ""
    else:
        run_id = tracking.resolve_model(ref)
        folder = _run_folder(run_id, tmp)
    fusion = folder / "model" / "ctt-tn.json"
    if fusion.exists():
        spec = json.loads(fusion.read_text())
        members = {k: load_member(_run_folder(spec[f"{k}_run"], tmp), spec[f"{k}_run"]) for k in ("visual", "audio")}
        if members["visual"].featurizer != members["audio"].featurizer:
            raise ModelNotFound(f"{ref}: the fused runs were trained on stores made with different featurizers")
        return Predictor(ref, members, float(spec["visual_weight"]), _thresholds(folder))
    if not (folder / "model" / "state_dict.pt").exists():
        raise ModelNotFound(f"{ref} is not a trained CTT-MMC model (no model/state_dict.pt); baselines cannot predict")
    member = load_member(folder, run_id)
    kind = "audio" if member.cfg.model.name in AUDIO_MODELS else "visual"
    return Predictor(ref, {kind: member}, 1.0, _thresholds(folder))


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
                     errors: pd.DataFrame, threshold: float | None = None) -> dict[str, Any]:
    th = {g: threshold for g in GENRES} if threshold is not None else predictor.thresholds
    genres = predicted_genres(probs, th)
    return {
        "model": predictor.source, "members": {k: m.run_id or m.cfg.model.name for k, m in predictor.members.items()},
        "visual_weight": predictor.visual_weight if len(predictor.members) == 2 else None,
        "thresholds": th,
        "trailers": [{"trailer_id": t, "path": p, "probabilities": {g: round(float(v), 6) for g, v in zip(GENRES, row)},
                      "genres": gs} for t, p, row, gs in zip(ids, paths, probs, genres)],
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
    ids, paths, probs = [], [], []
    for t in store.iter_batches(store_path, ROW_COLUMNS, batch_size=16):
        t = t.filter(pa.array(np.isin(np.asarray(t.column("trailer_id").to_pylist(), dtype=object), list(want))))
        if t.num_rows:
            ids += t.column("trailer_id").to_pylist()
            paths += t.column("source_path").to_pylist()
            probs.append(predictor.probabilities(t))
    probs = np.concatenate(probs) if probs else np.zeros((0, len(GENRES)))
    order = np.argsort(ids, kind="stable")
    return predictions_json(predictor, [ids[i] for i in order], [paths[i] for i in order], probs[order],
                            errors, threshold)


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

"""Classify new trailers with a trained model: featurize them exactly as its training data
was (the featurizer settings travel with the run), run the model, apply per-genre thresholds.

    model reference: RUN_ID | runs:/RUN_ID | models:/NAME/VERSION | models:/NAME@ALIAS | a folder
                     holding a run's `model/` and `config/` artifacts
    a visual run (ctt-a/b/c, lstm), an audio run (ctt-s), or a fused run (ctt-tn: both members)
"""
from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from ctt.config import Config, FeaturizeConfig, ModelConfig, from_dict
from ctt.data import Collate
from ctt.fusion import fuse
from ctt.genres import GENRES
from ctt.models import build_model, input_column
from ctt.thresholds import DEFAULT, predicted_genres
from ctt.training import predict_table


class ModelNotFound(LookupError):
    pass


@dataclass
class Member:
    """One trained network with the config it was trained and featurized with."""
    run_id: str
    cfg: Config
    model: torch.nn.Module
    featurizer: dict[str, Any]

    def probabilities(self, table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """-> (probs (N, C), has_prediction (N,)); audio models skip trailers without audio."""
        name = self.cfg.model.name
        n = table.num_rows
        probs = np.full((n, len(GENRES)), np.nan)
        ok = np.ones(n, bool)
        if input_column(name) == "spectrograms":
            ok = np.array(table.column("has_audio").to_pylist(), bool) & (np.array(table.column("num_windows")) > 0)
        if not ok.any():
            return probs, ok
        sub = table.filter(pa.array(ok)).select(["trailer_id", "genres", input_column(name)])
        draws = self.cfg.model.test_draws if input_column(name) == "spectrograms" else 1
        collate = Collate(self.cfg.model, seed=self.cfg.train.seed + 12345)
        probs[ok] = predict_table(self.model, collate, sub, draws)
        return probs, ok


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
        out = {k: m.probabilities(table) for k, m in self.members.items()}
        if set(out) == {"visual", "audio"}:
            return fuse(out["visual"][0], out["audio"][0], self.visual_weight)
        return next(iter(out.values()))[0]


def _download(run_id: str, dest: Path) -> Path:
    import mlflow

    from ctt import tracking
    client = mlflow.MlflowClient(tracking.tracking_uri())
    for sub in ("model", "config"):
        try:
            client.download_artifacts(run_id, sub, str(dest))
        except Exception as e:
            raise ModelNotFound(f"run {run_id}: cannot read its {sub}/ artifacts ({type(e).__name__}: {e})") from e
    return dest


def load_member(folder: Path, run_id: str = "") -> Member:
    mc = json.loads((folder / "model" / "model_config.json").read_text())
    dim = int(mc.pop("feature_dim"))
    cfg = from_dict(json.loads((folder / "config" / "resolved_config.json").read_text()))
    cfg.model = ModelConfig(**mc)
    model = build_model(cfg.model, dim)
    model.load_state_dict(torch.load(folder / "model" / "state_dict.pt", map_location="cpu", weights_only=True))
    model.eval()
    featurizer = json.loads((folder / "config" / "featurizer.json").read_text())
    return Member(run_id, cfg, model, featurizer)


def _thresholds(folder: Path) -> dict[str, float]:
    path = folder / "model" / "thresholds.json"
    return json.loads(path.read_text()) if path.exists() else {g: DEFAULT for g in GENRES}


def resolve_run(ref: str) -> str:
    """A model reference -> the MLflow run id behind it."""
    import mlflow

    from ctt import tracking
    tracking.probe(tracking.tracking_uri())
    client = mlflow.MlflowClient(tracking.tracking_uri())
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
        raise ModelNotFound(f"no model {ref!r} at {tracking.tracking_uri()} ({type(e).__name__}: {e})") from e


def load_predictor(ref: str) -> Predictor:
    tmp = Path(tempfile.mkdtemp(prefix="ctt_model_"))
    if Path(ref).is_dir():
        folder, run_id = Path(ref), ""
    else:
        run_id = resolve_run(ref)
        folder = _download(run_id, tmp / run_id)
    fusion = folder / "model" / "ctt-tn.json"
    if fusion.exists():
        spec = json.loads(fusion.read_text())
        members = {k: load_member(_download(spec[f"{k}_run"], tmp / spec[f"{k}_run"]), spec[f"{k}_run"])
                   for k in ("visual", "audio")}
        if members["visual"].featurizer != members["audio"].featurizer:
            raise ModelNotFound(f"{ref}: the fused runs were trained on stores made with different featurizers")
        return Predictor(ref, members, float(spec["visual_weight"]), _thresholds(folder))
    if not (folder / "model" / "state_dict.pt").exists():
        raise ModelNotFound(f"{ref} is not a trained CTT-MMC model (no model/state_dict.pt); baselines cannot predict")
    member = load_member(folder, run_id)
    kind = "audio" if input_column(member.cfg.model.name) == "spectrograms" else "visual"
    return Predictor(ref, {kind: member}, 1.0, _thresholds(folder))


def featurize_config(featurizer: dict[str, Any], base: FeaturizeConfig | None = None) -> FeaturizeConfig:
    """The FeaturizeConfig that reproduces a store's settings (runtime knobs from `base`)."""
    from ctt.config import _merge
    s = featurizer.get("settings", featurizer)
    if "shots" not in s or "name" not in s.get("backbone", {}) or s["backbone"].get("weights") == "lmtd9-release":
        raise ModelNotFound("this model was trained on features that cannot be recomputed here "
                            f"(featurizer {s.get('source') or s.get('backbone')}); train on a store written by jobs/featurize.py")
    cfg = base or FeaturizeConfig()
    _merge(cfg.backbone, {k: v for k, v in s["backbone"].items() if v is not None})
    _merge(cfg.shots, s["shots"])
    cfg.max_keyframes = int(s.get("max_keyframes", 0))
    return cfg


def build_manifest(inputs: list[str], dest: Path) -> Path:
    """Video files, folders and manifests -> one manifest CSV (absolute paths, no labels)."""
    from featurize.manifest import read_manifest
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


def run_predict(ref: str, inputs: list[str], store_path: str | None = None, output: str | None = None,
                threshold: float | None = None, base: FeaturizeConfig | None = None) -> dict[str, Any]:
    """Featurize `inputs` into `store_path` (a temp folder if None) and predict every trailer."""
    import ray

    from featurize import store
    from featurize.pipeline import run_featurize
    predictor = load_predictor(ref)
    fcfg = featurize_config(predictor.featurizer, base)
    work = Path(tempfile.mkdtemp(prefix="ctt_predict_"))
    store_path = store_path or str(work / "store")
    manifest = build_manifest(inputs, work)
    summary = run_featurize(str(manifest), store_path, fcfg)
    want = set(pd.read_csv(manifest, dtype=str).trailer_id)
    errors = pd.DataFrame(columns=["trailer_id", "path", "stage", "error_type", "message"])
    if store.error_ids(store_path):
        errors = store.read_table(store_path.rstrip("/") + "/" + store.ERRORS_DIR).to_pandas()
        errors = errors[errors.trailer_id.isin(want)]
    cols = ["trailer_id", "genres", "source_path", "frames", "spectrograms", "has_audio", "num_windows"]
    if output:
        ds = ray.data.read_parquet(store_path, file_extensions=["parquet"]).select_columns(cols)
        ds = ds.map_batches(PredictBatch, fn_constructor_args=(ref,), batch_format="pyarrow", batch_size=16,
                            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=2))
        ds.write_parquet(output)
        return {"output": output, "featurize": summary, "errors": errors.to_dict("records")}
    ids, paths, probs = [], [], []
    for t in store.iter_batches(store_path, cols, batch_size=16):
        keep = np.array([i in want for i in t.column("trailer_id").to_pylist()])
        t = t.filter(pa.array(keep))
        if t.num_rows:
            ids += t.column("trailer_id").to_pylist()
            paths += t.column("source_path").to_pylist()
            probs.append(predictor.probabilities(t))
    probs = np.concatenate(probs) if probs else np.zeros((0, len(GENRES)))
    order = np.argsort(ids, kind="stable")
    return predictions_json(predictor, [ids[i] for i in order], [paths[i] for i in order], probs[order],
                            errors, threshold)

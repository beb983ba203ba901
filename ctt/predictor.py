"""A trained genre model as predict and the served model use it: one network, or the two
members of a fused CTT-MMC-TN run with its visual weight, plus the per-genre thresholds
and the featurizer settings its store was made with.

It is saved as one folder, the bundle inside every run's MLflow pyfunc model:

    BUNDLE/predictor.json          members, visual weight, thresholds, genres
    BUNDLE/<visual|audio>/         state_dict.pt, resolved_config.json (the model's config
                                   within it), member.json (feature_dim), featurizer.json
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from ctt import calibration
from ctt.config import AUDIO_MODELS, Config, from_dict, input_column, to_dict
from ctt.evaluation import Scorer
from ctt.evidence import top_evidence, window_times
from ctt.fusion import fuse
from ctt.models import build_model
from featurize import store
from featurize.audio import SPEC_SIZE
from featurize.genres import GENRES

BUNDLE_FILE = "predictor.json"
KINDS = ("visual", "audio")


class NotAGenreModel(LookupError):
    """A model reference or folder that holds no CTT-MMC genre model."""


@dataclass
class Member:
    """One trained network with the config it was trained and featurized with."""
    run_id: str
    cfg: Config
    scorer: Scorer
    featurizer: dict[str, Any]
    feature_dim: int
    calibration: dict[str, list[float]] = field(default_factory=dict)   # ctt.calibration; {}: none

    def probabilities(self, table: pa.Table) -> np.ndarray:
        """Store rows -> (N, C), NaN rows where this member cannot read a trailer."""
        return calibration.apply(self.scorer.where_readable(table), self.calibration)

    @property
    def kind(self) -> str:
        return "audio" if self.cfg.model.name in AUDIO_MODELS else "visual"

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(self.scorer.model.state_dict(), folder / "state_dict.pt")
        (folder / "member.json").write_text(json.dumps({"feature_dim": self.feature_dim}))
        (folder / "resolved_config.json").write_text(json.dumps(to_dict(self.cfg), indent=2))
        (folder / "featurizer.json").write_text(json.dumps(self.featurizer, indent=2))
        (folder / "calibration.json").write_text(json.dumps(self.calibration, indent=2))


def member(model: torch.nn.Module, cfg: Config, feature_dim: int, featurizer: dict[str, Any],
           run_id: str = "", calibrated: dict[str, list[float]] | None = None) -> Member:
    return Member(run_id, cfg, Scorer(model, cfg.model, cfg.train.seed), featurizer, feature_dim, calibrated or {})


def load_member(folder: Path, run_id: str = "") -> Member:
    cfg = from_dict(json.loads((folder / "resolved_config.json").read_text()))
    # Bundles before member.json kept feature_dim beside a second copy of the model config.
    dim = int(json.loads(next(p for p in (folder / "member.json", folder / "model_config.json")
                              if p.exists()).read_text())["feature_dim"])
    model = build_model(cfg.model, dim)
    model.load_state_dict(torch.load(folder / "state_dict.pt", map_location="cpu", weights_only=True))
    cal = folder / "calibration.json"
    return member(model, cfg, dim, json.loads((folder / "featurizer.json").read_text()), run_id,
                  json.loads(cal.read_text()) if cal.exists() else None)


@dataclass
class Predictor:
    source: str
    members: dict[str, Member]                      # "visual" and/or "audio"
    visual_weight: float | list[float] = 1.0       # one, or one per genre (fusion.per_genre)
    thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def featurizer(self) -> dict[str, Any]:
        return next(iter(self.members.values())).featurizer

    @property
    def feature_dim(self) -> int:
        return next(iter(self.members.values())).feature_dim

    def probabilities(self, table: pa.Table) -> np.ndarray:
        """Store rows -> (N, C); a fused model keeps the visual probabilities where the audio
        member cannot read a trailer, a lone audio model gives NaN rows there."""
        out = {k: m.probabilities(table) for k, m in self.members.items()}
        if set(out) == set(KINDS):
            return fuse(out["visual"], out["audio"], self.visual_weight)
        return next(iter(out.values()))

    def evidence(self, table: pa.Table, probs: np.ndarray, thresholds: dict[str, float],
                 k: int = 3) -> list[dict[str, list[dict[str, Any]]]]:
        """Per trailer, for each predicted genre, the top-k keyframes ("shot") and/or audio
        windows ("window") behind it (`ctt.evidence`; numbered from 1, as the pictures show
        them), shares weighted by each member's part in the fusion. A predicted genre with no
        evidence gets the reason under "why" (genre -> reason)."""
        ids = table.column("trailer_id").to_pylist()
        times = (table.column("frame_times").to_pylist() if "frame_times" in table.column_names
                 else [None] * len(ids))
        attrs: dict[str, dict[str, np.ndarray]] = {}
        for kind, m in self.members.items():
            sub = table.filter(store.readable(input_column(m.cfg.model.name)))
            if sub.num_rows:
                attrs[kind] = dict(zip(sub.column("trailer_id").to_pylist(), m.scorer.attributions(sub)))
        w = np.broadcast_to(np.asarray(self.visual_weight, np.float64), (len(GENRES),))
        cut = np.array([thresholds.get(g, 0.5) for g in GENRES])
        out = []
        for i, tid in enumerate(ids):
            both = len(attrs) == 2 and tid in attrs.get("audio", {})
            row: dict[str, Any] = {}
            why: dict[str, str] = {}
            for c in np.flatnonzero(np.nan_to_num(probs[i], nan=-1.0) >= cut):
                entries, steps = [], 0
                for kind, by_id in attrs.items():
                    if tid not in by_id:
                        continue
                    a = by_id[tid][:, c]
                    weight = (w[c] if kind == "visual" else 1 - w[c]) if both else 1.0
                    known = times[i] is not None and len(times[i]) >= len(a)    # precomputed frames: positions
                    t = (np.asarray(times[i] if known else np.arange(len(a)), np.float64)[:len(a)]
                         if kind == "visual" else window_times(len(a)))
                    entries += top_evidence(a, t, "shot" if kind == "visual" else "window", k, weight)
                    steps = max(steps, len(a))
                row[GENRES[c]] = sorted(entries, key=lambda e: -e["share"])[:k]
                if not entries:
                    why[GENRES[c]] = ("one shot (or audio window): nothing to compare it with" if steps <= 1 else
                                      "no shot or window raised this genre's score (every attribution is zero "
                                      "or negative): the network called it from the trailer as a whole")
            out.append(row | ({"why": why} if why else {}))
        return out

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for kind, m in self.members.items():
            m.save(folder / kind)
        (folder / BUNDLE_FILE).write_text(json.dumps({
            "members": {k: m.run_id for k, m in self.members.items()}, "visual_weight": self.visual_weight,
            "thresholds": self.thresholds, "genres": list(GENRES)}, indent=2))
        return folder


def load_bundle(folder: Path, source: str = "") -> Predictor:
    if not (folder / BUNDLE_FILE).exists():
        raise NotAGenreModel(f"{source or folder} holds no CTT-MMC genre model ({BUNDLE_FILE} missing)")
    spec = json.loads((folder / BUNDLE_FILE).read_text())
    members = {k: load_member(folder / k, run_id) for k, run_id in spec["members"].items()}
    w = spec["visual_weight"]
    return Predictor(source or str(folder), members, [float(x) for x in w] if isinstance(w, list) else float(w),
                     spec["thresholds"])


def fused(visual: Predictor, audio: Predictor, weight: float, thresholds: dict[str, float],
          source: str = "") -> Predictor:
    """The CTT-MMC-TN predictor of a visual and an audio run (both made from one store)."""
    if visual.featurizer != audio.featurizer:
        raise NotAGenreModel(f"{source}: the fused runs were trained on stores made with different featurizers")
    return Predictor(source, {"visual": visual.members["visual"], "audio": audio.members["audio"]}, weight,
                     thresholds)


def _matrix(cell: Any, width: int, name: str) -> np.ndarray:
    """A `frames` / `spectrograms` cell (nested lists or arrays, or None) -> (t, width)."""
    if cell is None or not len(cell):
        return np.zeros((0, width), np.float32)
    rows = np.asarray([np.asarray(r, np.float32).ravel() for r in cell]) if not isinstance(cell, np.ndarray) \
        or cell.dtype == object else np.asarray(cell, np.float32)
    rows = rows.reshape(len(rows), -1)
    if rows.shape[1] != width:
        raise ValueError(f"{name}: each item must have {width} values, got {rows.shape[1]}")
    if not np.isfinite(rows).all():
        raise ValueError(f"{name}: non-finite values")
    return rows


def table_from_features(ids: list[str], frames: list[Any], spectrograms: list[Any], dim: int) -> pa.Table:
    """Precomputed features (a `frames` cell of (t, dim) and a `spectrograms` cell of (s, 130 x 513)
    per trailer, either may be None) -> store rows the members can score."""
    rows = []
    for tid, f, s in zip(ids, frames, spectrograms):
        spec = _matrix(s, SPEC_SIZE, "spectrograms")
        rows.append(store.trailer_row(dim, trailer_id=tid, frames=_matrix(f, dim, "frames"),
                                      spectrograms=spec, has_audio=bool(len(spec))))
    return store.features_table(rows, dim)

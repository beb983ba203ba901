"""Import the public LMTD-9 release into a feature store.

    lmtd9_resnet152.pickle  dict: 6-digit trailer id string -> (t, 2048) keyframe features
    database.db             SQLite table lmtd9_0: id, set (0 train, 1 valid, 2 test), isAction ... isThriller

Unpickling runs code named by the file: the pickle is read by an unpickler that admits
only what such a file holds (dicts, strings, numbers, NumPy arrays) and refuses
anything else. Malformed entries become rows of the errors table; the rest is written.
"""
from __future__ import annotations

import io
import logging
import pickle
import sqlite3
from collections import Counter
from typing import Any

import fsspec
import numpy as np

from featurize import store
from featurize.genres import GENRES

log = logging.getLogger("ctt.lmtd")
TABLE = "lmtd9_0"
SPLITS = {0: "train", 1: "val", 2: "test"}
LABEL_COLUMNS = ("isAction", "isAdventure", "isComedy", "isCrime", "isDrama", "isHorror",
                 "isRomance", "isSciFi", "isThriller")            # GENRES order
ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    ("collections", "OrderedDict"),
    ("builtins", "bytes"), ("__builtin__", "bytes"), ("builtins", "bytearray"), ("__builtin__", "bytearray"),
}


class ForbiddenPickle(pickle.UnpicklingError):
    pass


class ReleaseError(ValueError):
    pass


class _Restricted(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in ALLOWED:
            return super().find_class(module, name)
        raise ForbiddenPickle(f"the pickle asks for {module}.{name}, which a features file does not hold; "
                              "refusing to load it (only dicts, strings, numbers and NumPy arrays are allowed)")


def load_features(path: str) -> dict[str, Any]:
    """The release's pickle (Python 2 or 3) through the restricted unpickler."""
    with fsspec.open(path, "rb") as fh:
        data = fh.read()
    obj = _Restricted(io.BytesIO(data), encoding="latin1").load()
    if not isinstance(obj, dict):
        raise ReleaseError(f"{path}: expected a dict of trailer id -> array, found {type(obj).__name__}")
    return obj


def _trailer_id(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("latin1")
    s = str(value).strip()
    return f"{int(s):06d}" if s.isdigit() else s


def load_labels(path: str) -> dict[str, dict[str, Any]]:
    """id -> {'split': ..., 'genres': [...]} from the release's SQLite file (local path)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        cols = [r[1] for r in con.execute(f"PRAGMA table_info({TABLE})")]
        if not cols:
            raise ReleaseError(f"{path}: no table {TABLE!r}")
        missing = [c for c in ("id", "set", *LABEL_COLUMNS) if c not in cols]
        if missing:
            raise ReleaseError(f"{path}: table {TABLE} lacks columns {missing}")
        rows = con.execute(f"SELECT id, \"set\", {', '.join(LABEL_COLUMNS)} FROM {TABLE}").fetchall()
    out = {}
    for r in rows:
        out[_trailer_id(r[0])] = {"split": SPLITS.get(r[1]), "genres": [g for g, v in zip(GENRES, r[2:]) if v]}
    return out


def _check(tid: str, arr: Any, labels: dict | None, dim: int) -> tuple[np.ndarray | None, str, str]:
    """-> (features, '', '') or (None, error_type, message)."""
    if labels is None:
        return None, "MissingLabels", f"{tid} is not in table {TABLE}"
    if labels["split"] is None:
        return None, "MissingLabels", f"{tid} has an unknown set value (expected 0, 1 or 2)"
    if not labels["genres"]:
        return None, "MissingLabels", f"{tid} has no genre in table {TABLE}"
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        return None, "BadFeatures", f"{tid}: expected a numeric array, found {type(arr).__name__}"
    if arr.ndim != 2 or arr.shape[1] != dim:
        return None, "BadFeatures", f"{tid}: expected shape (t, {dim}), found {arr.shape}"
    if arr.shape[0] == 0:
        return None, "BadFeatures", f"{tid}: no keyframes (shape {arr.shape})"
    if not np.isfinite(arr).all():
        return None, "BadFeatures", f"{tid}: non-finite values"
    return arr.astype(np.float32), "", ""


def _row(tid: str, frames: np.ndarray, labels: dict, source: str) -> dict[str, Any]:
    """A release entry as a store row: keyframe features and labels only; times, shots and
    the source's geometry are unknown (-1 for times and shots, 0 for duration and rate: a
    store holds no NaN), and there is no audio."""
    t = len(frames)
    return store.trailer_row(frames.shape[1], trailer_id=tid, split=labels["split"], genres=labels["genres"],
                             frames=frames, frame_times=np.full(t, -1.0, np.float32),
                             shot_starts=np.full(t, -1, np.int32), duration_s=0.0, fps=0.0,
                             source_path=source)


def import_release(features: str, database: str, output: str, rows_per_file: int = 256) -> dict[str, Any]:
    """Write the release as a feature store (frames only); every id lands in the store or _errors."""
    feats = load_features(features)
    labels = load_labels(database)
    shapes = Counter(a.shape[1] for a in feats.values() if isinstance(a, np.ndarray) and a.ndim == 2)
    if not shapes:
        raise ReleaseError(f"{features}: no (t, d) arrays in the pickle")
    dim = shapes.most_common(1)[0][0]
    store.claim(output, {"feature_dim": dim, "source": "LMTD-9 release", "features_file": features.split("/")[-1],
                         "backbone": {"name": "resnet152", "weights": "lmtd9-release"}})
    done = store.done_ids(output) | store.error_ids(output)
    ok, failed, summary = [], [], Counter()
    ids = sorted({_trailer_id(k) for k in feats} | set(labels))
    by_id = {_trailer_id(k): v for k, v in feats.items()}
    for tid in ids:
        if tid in done:
            summary["skipped"] += 1
            continue
        if tid not in by_id:
            failed.append({"trailer_id": tid, "path": features, "stage": "import", "error_type": "MissingFeatures",
                           "message": f"{tid} is in {TABLE} but not in the features pickle"})
            continue
        frames, etype, msg = _check(tid, by_id[tid], labels.get(tid), dim)
        if frames is None:
            failed.append({"trailer_id": tid, "path": features, "stage": "import", "error_type": etype, "message": msg})
        else:
            ok.append(_row(tid, frames, labels[tid], features))
            summary[labels[tid]["split"]] += 1
        if len(ok) >= rows_per_file:
            store.write_atomic(store.features_table(ok, dim), output)
            summary["done"] += len(ok)
            ok = []
    if ok:
        store.write_atomic(store.features_table(ok, dim), output)
        summary["done"] += len(ok)
    if failed:
        store.write_atomic(store.errors_table(failed), output, store.ERRORS_DIR)
    summary["failed"] = len(failed)
    reasons = Counter(f["error_type"] for f in failed)
    return {"output": output, "feature_dim": dim, "trailers": len(ids), **dict(summary),
            "failed_by_reason": dict(reasons)}

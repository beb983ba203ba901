"""The Parquet feature store (docs/contract.md): schema, atomic writes, errors, resume.

    STORE/                  one row per featurized trailer (plain Parquet dataset): keyframe
                            features, spectrograms, low-level features, source metadata
    STORE/_errors/          one row per trailer that failed: trailer_id, path, stage, error_type, message
    STORE/_featurizer.json  the settings and version that made the store
    STORE/_tmp/             files being written; renamed into place when complete

Files are named after their content's trailer ids, so a retried task rewrites the
same file instead of adding a duplicate, and a reader never sees a partial file.
"""
from __future__ import annotations

import hashlib
import json
import posixpath
import uuid
from typing import Any, Iterable

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from featurize.audio import SPEC_SIZE

FEATURIZER_VERSION = "3"          # 2: stream choice, display geometry, one timeline, damage counts;
                                  # 3: the shot rule robust to flashes, gradual transitions and jump cuts
ERRORS_DIR = "_errors"
TMP_DIR = "_tmp"
SETTINGS_FILE = "_featurizer.json"
RUN_FILE = "_run"                 # the featurize run that may write to the store now

ERROR_SCHEMA = pa.schema([
    ("trailer_id", pa.string()), ("path", pa.string()), ("stage", pa.string()),
    ("error_type", pa.string()), ("message", pa.string()),
])


def _columns(dim: int) -> list[tuple[str, pa.DataType, Any]]:
    """The trailer row: every column of the store, its Arrow type, and the value a row
    holds when its source has none (a release without video, a store of random features).
    `dim` is the keyframe feature length."""
    return [
        ("trailer_id", pa.string(), ""),
        ("split", pa.string(), ""),                                  # train | val | test | ""
        ("genres", pa.list_(pa.string()), []),                       # names from featurize.genres
        ("frames", pa.list_(pa.list_(pa.float32(), dim)), np.zeros((0, dim), np.float32)),  # (t, dim) features
        ("frame_times", pa.list_(pa.float32()), np.zeros(0, np.float32)),   # (t,) seconds
        ("shot_starts", pa.list_(pa.int32()), np.zeros(0, np.int32)),       # (t,) first frame of each shot
        ("num_keyframes", pa.int32(), 0),                            # len(frames), set by features_table
        ("duration_s", pa.float32(), 0.0),
        ("n_frames", pa.int32(), 0),
        ("fps", pa.float32(), 0.0),
        ("width", pa.int32(), 0),
        ("height", pa.int32(), 0),
        ("video_codec", pa.string(), ""),
        ("video_stream", pa.int32(), 0),                             # index of the stream decoded
        ("decode_errors", pa.int32(), 0),                            # packets skipped as undecodable
        ("frames_lost", pa.int32(), 0),                              # video packets that gave no frame
        ("spectrograms", pa.list_(pa.list_(pa.float16(), SPEC_SIZE)),        # (s, 130 * 513) magnitudes
         np.zeros((0, SPEC_SIZE), np.float16)),
        ("num_windows", pa.int32(), 0),                              # len(spectrograms), set by features_table
        ("has_audio", pa.bool_(), False),                            # False: no audio track, or a silent one
        ("audio_padded", pa.bool_(), False),                         # True: shorter than one window, zero-padded
        ("sample_rate", pa.int32(), 0),                              # of the source audio stream
        ("audio_codec", pa.string(), ""),
        ("audio_stream", pa.int32(), -1),                            # -1: none
        ("audio_repaired", pa.int32(), 0),                           # non-finite samples replaced by silence
        ("vllf", pa.list_(pa.float32()), np.zeros(0, np.float32)),   # names in _featurizer.json
        ("av", pa.list_(pa.float32()), np.zeros(0, np.float32)),
        ("source_path", pa.string(), ""),
        ("warnings", pa.string(), ""),                               # what was dropped and why ("": nothing)
    ]


COLUMNS = tuple(name for name, _, _ in _columns(0))
_DERIVED = {"num_keyframes": "frames", "num_windows": "spectrograms"}   # counted, never given
FILTER_COLUMNS = ["split", "has_audio", "num_windows"]                  # what `split_filter` reads


FLOAT_COLUMNS = ("frames", "frame_times", "duration_s", "fps", "spectrograms", "vllf", "av")


class StoreMismatch(ValueError):
    pass


class NonFiniteValue(ValueError):
    """A row holding NaN or inf: no store ever keeps one."""


def nonfinite_columns(row: dict[str, Any]) -> list[str]:
    """The float columns of a store row that hold a NaN or an inf (none: the row may be stored)."""
    return [name for name in FLOAT_COLUMNS if name in row
            and not np.isfinite(np.asarray(row[name], dtype=None if isinstance(row[name], np.ndarray) else float)).all()]


def store_schema(dim: int) -> pa.Schema:
    return pa.schema([(name, typ) for name, typ, _ in _columns(dim)])


def trailer_row(dim: int = 0, **values: Any) -> dict[str, Any]:
    """A complete store row: `values` over the defaults. Unknown names are errors, so
    every writer (decode, LMTD-9 import, synthetic stores) fills the same row."""
    unknown = set(values) - set(COLUMNS)
    if unknown:
        raise KeyError(f"not store columns: {sorted(unknown)}")
    return {name: default for name, _, default in _columns(dim)} | values


def readable(column: str) -> pc.Expression:
    """The rows a model reading `column` can use: an audio model needs a track with sound."""
    if column == "spectrograms":
        return pc.field("has_audio") & (pc.field("num_windows") > 0)
    return pc.scalar(True)


def split_filter(split: str, column: str) -> pc.Expression:
    """The rows of `split` that a model reading `column` can use."""
    return (pc.field("split") == split) & readable(column)


def select_split(table: pa.Table, split: str, column: str, columns: list[str]) -> pa.Table:
    """One split's usable rows, the given columns: here rather than beside the trainer, so the
    Ray Data tasks that run it import the store, not the training stack."""
    return table.filter(split_filter(split, column)).select(columns)


def to_float16(x: np.ndarray) -> np.ndarray:
    """float32 -> float16 as stored, bit for bit what numpy gives, converted by torch's
    vectorised kernels: numpy's own cast is ~100x slower on the tiny (subnormal in float16)
    magnitudes a spectrogram is full of."""
    import torch  # lazy: a store's readers (pyarrow only) never need torch; only writers of spectrograms cast
    return torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(torch.float16).numpy()


def _fs(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, root = fsspec.core.url_to_fs(url)
    fs.invalidate_cache()          # other processes write here: never trust a cached S3 listing
    return fs, root


def list_of_vectors(seqs: list[np.ndarray], dim: int, dtype: pa.DataType) -> pa.Array:
    """Ragged (t_i, dim) arrays as list<fixed_size_list<dim>> straight from their buffers:
    no Python lists, so gigabytes convert at memory speed."""
    lengths = np.array([len(s) for s in seqs], np.int64)
    flat = (np.concatenate([np.asarray(s).reshape(-1, dim) for s in seqs]) if len(seqs)
            else np.zeros((0, dim))).astype(dtype.to_pandas_dtype()).ravel()
    inner = pa.FixedSizeListArray.from_arrays(pa.array(flat, type=dtype), dim)
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    return pa.ListArray.from_arrays(offsets, inner)


def features_table(rows: list[dict[str, Any]], dim: int) -> pa.Table:
    """Rows of plain Python/NumPy values (as `trailer_row` makes them) -> a table with
    exactly `store_schema(dim)`. A row with a non-finite value is refused (NonFiniteValue):
    writers route such rows to the errors table first (`nonfinite_columns`)."""
    bad = {str(r.get("trailer_id")): cols for r in rows if (cols := nonfinite_columns(r))}
    if bad:
        raise NonFiniteValue(f"non-finite values in {bad}")
    cols: dict[str, Any] = {}
    for name, typ, _ in _columns(dim):
        if name in _DERIVED:
            cols[name] = pa.array([len(np.asarray(r[_DERIVED[name]])) for r in rows], type=typ)
        elif name == "frames":
            cols[name] = list_of_vectors([r[name] for r in rows], dim, pa.float32())
        elif name == "spectrograms":
            cols[name] = list_of_vectors([r[name] for r in rows], SPEC_SIZE, pa.float16())
        else:
            vals = [r[name] for r in rows]
            if pa.types.is_list(typ):
                vals = [list(np.asarray(v).tolist()) for v in vals]
            cols[name] = pa.array(vals, type=typ)
    return pa.Table.from_pydict(cols, schema=store_schema(dim))


def errors_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist([{k: str(r.get(k, "")) for k in ERROR_SCHEMA.names} for r in rows],
                                schema=ERROR_SCHEMA)


def file_name(trailer_ids: Iterable[str]) -> str:
    return hashlib.sha1("\n".join(sorted(trailer_ids)).encode()).hexdigest()[:20] + ".parquet"


def write_atomic(table: pa.Table, store: str, subdir: str = "", run: str | None = None) -> str | None:
    """Write to STORE/_tmp, then move into place: readers see all of a file or none of it.
    `run`: the token of the featurize run writing (`begin_run`); once another run has taken
    the store, this one's late writes are dropped (None returned): its trailers are the new
    run's to do, so a killed run's actor finishing its batch cannot add a second copy."""
    fs, root = _fs(store)
    name = file_name(table.column("trailer_id").to_pylist())
    tmp = posixpath.join(root, TMP_DIR, f"{uuid.uuid4().hex}.parquet")
    final = posixpath.join(root, subdir, name) if subdir else posixpath.join(root, name)
    fs.makedirs(posixpath.dirname(tmp), exist_ok=True)
    fs.makedirs(posixpath.dirname(final), exist_ok=True)
    with fs.open(tmp, "wb") as fh:
        pq.write_table(table, fh, compression="zstd")
    if run is not None and current_run(store) != run:
        fs.rm(tmp)
        return None
    fs.mv(tmp, final)
    return final


def begin_run(store: str) -> str:
    """Take the store for a new featurize run: from now on only its writes land."""
    fs, root = _fs(store)
    fs.makedirs(root, exist_ok=True)
    token = uuid.uuid4().hex
    with fs.open(posixpath.join(root, RUN_FILE), "w") as fh:
        fh.write(token)
    return token


def _read_file(store: str, name: str) -> str | None:
    """A small file at the store's root, or None where there is none."""
    fs, root = _fs(store)
    path = posixpath.join(root, name)
    if not fs.exists(path):
        return None
    with fs.open(path, "r") as fh:
        return fh.read()


def current_run(store: str) -> str | None:
    text = _read_file(store, RUN_FILE)
    return None if text is None else text.strip()


def _data_files(fs: fsspec.AbstractFileSystem, path: str) -> list[str]:
    if not fs.exists(path):
        return []
    return sorted(p for p in fs.find(path) if p.endswith(".parquet")
                  and not any(part.startswith(("_", ".")) for part in posixpath.relpath(p, path).split("/")[:-1]))


def _ids_by_file(fs: fsspec.AbstractFileSystem, path: str) -> dict[str, list[str]]:
    out = {}
    for p in _data_files(fs, path):
        with fs.open(p, "rb") as fh:
            out[p] = pq.read_table(fh, columns=["trailer_id"]).column(0).to_pylist()
    return out


def _drop_rows(fs: fsspec.AbstractFileSystem, path: str, drop: set[str], store: str, subdir: str) -> None:
    """Rewrite one data file without the rows of `drop` (the new file lands before the old
    one goes, so no row is ever missing)."""
    with fs.open(path, "rb") as fh:
        table = pq.read_table(fh)
    ids = table.column("trailer_id").to_pylist()
    keep, seen = [], set()
    for i, t in enumerate(ids):
        if t not in drop and t not in seen:
            keep.append(i)
            seen.add(t)
    if keep:
        new = write_atomic(table.take(keep), store, subdir)
        if new is not None and posixpath.normpath(new) == posixpath.normpath(path):
            return
    fs.rm(path)


def compact(store: str) -> dict[str, int]:
    """Keep one row per trailer: a trailer in several data files keeps the row of the first
    file (by name); a trailer in the store is no longer a failure in `_errors`. Returns what
    was removed. Every featurize run compacts when it starts and when it ends."""
    fs, root = _fs(store)
    removed = {"duplicate_rows": 0, "errors_resolved": 0}
    owner: dict[str, str] = {}
    drops: dict[str, set[str]] = {}
    for path, ids in _ids_by_file(fs, root).items():
        for t in ids:
            if t in owner:               # a second row: in another file (dropped there) or this one (kept once)
                drops.setdefault(path, set()).update([t] if owner[t] != path else [])
                removed["duplicate_rows"] += 1
            else:
                owner[t] = path
    for path, drop in drops.items():
        _drop_rows(fs, path, drop, store, "")
    for path, ids in _ids_by_file(fs, posixpath.join(root, ERRORS_DIR)).items():
        done = {t for t in ids if t in owner}
        if done:
            removed["errors_resolved"] += sum(t in done for t in ids)
            _drop_rows(fs, path, done, store, ERRORS_DIR)
    return removed


def check(store: str) -> dict[str, Any]:
    """What a store holds that it should not: trailers stored twice, trailers both stored and
    in `_errors`, non-finite values (the float columns, read in batches)."""
    fs, root = _fs(store)
    seen: dict[str, int] = {}
    for ids in _ids_by_file(fs, root).values():
        for t in ids:
            seen[t] = seen.get(t, 0) + 1
    errors = {t for ids in _ids_by_file(fs, posixpath.join(root, ERRORS_DIR)).values() for t in ids}
    nonfinite: dict[str, int] = {}
    present = [c for c in FLOAT_COLUMNS if c in pads.dataset(root, filesystem=fs, format="parquet").schema.names] \
        if seen else []
    for t in (iter_batches(store, present, batch_size=16) if present else []):
        for c in present:
            values = t.column(c).combine_chunks()
            while pa.types.is_list(values.type) or pa.types.is_fixed_size_list(values.type):
                values = values.flatten()
            bad = int((~np.isfinite(np.asarray(values.to_numpy(zero_copy_only=False), np.float64))).sum())
            if bad:
                nonfinite[c] = nonfinite.get(c, 0) + bad
    duplicates = sorted(t for t, k in seen.items() if k > 1)
    both = sorted(errors & set(seen))
    return {"store": store, "trailers": len(seen), "rows": sum(seen.values()), "errors": len(errors),
            "duplicate_ids": duplicates, "also_in_errors": both, "non_finite": nonfinite,
            "ok": not (duplicates or both or nonfinite)}


def _ids(fs: fsspec.AbstractFileSystem, path: str) -> set[str]:
    return {t for ids in _ids_by_file(fs, path).values() for t in ids}


def files(store: str) -> list[str]:
    """The names of the store's data files (named after their trailer ids)."""
    fs, root = _fs(store)
    return sorted(posixpath.basename(p) for p in _data_files(fs, root))


def done_ids(store: str) -> set[str]:
    fs, root = _fs(store)
    return _ids(fs, root)


def error_ids(store: str) -> set[str]:
    fs, root = _fs(store)
    return _ids(fs, posixpath.join(root, ERRORS_DIR))


def clear_errors(store: str) -> None:
    """Forget recorded failures so a rerun tries those trailers again."""
    fs, root = _fs(store)
    path = posixpath.join(root, ERRORS_DIR)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def settings_of(store: str) -> dict | None:
    text = _read_file(store, SETTINGS_FILE)
    return None if text is None else json.loads(text)


class NotAStore(ValueError):
    """A path that holds no feature store."""


def require_settings(store: str) -> dict:
    """The store's recorded settings; NotAStore where there is none: the one rule for what a
    feature store is, for jobs checking their input and for readers alike."""
    settings = settings_of(store)
    if settings is None:
        raise NotAStore(f"{store} is not a feature store (no {SETTINGS_FILE}); "
                        "write one with jobs/featurize.py (or jobs/import_lmtd.py)")
    return settings


def document(settings: dict) -> dict:
    """What `SETTINGS_FILE` holds for a store made with `settings`."""
    return {"version": FEATURIZER_VERSION, "settings": settings}


def claim(store: str, settings: dict, write: bool = True) -> None:
    """Record the settings of a new store, or refuse to add to a store made differently
    (`write=False`: only the check, for a dry run)."""
    current = settings_of(store)
    if current is not None:
        if current.get("version") != FEATURIZER_VERSION:
            raise StoreMismatch(
                f"{store} was made by featurizer version {current.get('version')} (this is "
                f"{FEATURIZER_VERSION}); write to a new store")
        if current.get("settings") != settings:
            diff = sorted(k for k in set(current.get("settings", {})) | set(settings)
                          if current.get("settings", {}).get(k) != settings.get(k))
            raise StoreMismatch(
                f"{store} was made with other featurizer settings (differs in: {', '.join(diff)}); "
                f"write to a new store or use the settings in {SETTINGS_FILE}")
        return
    if not write:
        return
    fs, root = _fs(store)
    fs.makedirs(root, exist_ok=True)
    with fs.open(posixpath.join(root, SETTINGS_FILE), "w") as fh:
        json.dump(document(settings), fh, indent=2, sort_keys=True)


def read_table(store: str, columns: list[str] | None = None, filter=None) -> pa.Table:
    """The store's rows with plain pyarrow (no Ray), e.g. for evaluation in the driver."""
    fs, root = _fs(store)
    ds = pads.dataset(root, filesystem=fs, format="parquet")
    return ds.to_table(columns=columns, filter=filter)


def iter_batches(store: str, columns: list[str], filter=None, batch_size: int = 64) -> Iterable[pa.Table]:
    """The store's rows in batches of at most `batch_size`, never all in memory at once."""
    fs, root = _fs(store)
    ds = pads.dataset(root, filesystem=fs, format="parquet")
    for rb in ds.to_batches(columns=columns, filter=filter, batch_size=batch_size):
        if rb.num_rows:
            yield pa.Table.from_batches([rb])

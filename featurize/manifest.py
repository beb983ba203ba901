"""Reading the featurize input: a CSV/Parquet manifest, or a folder of videos (docs/contract.md)."""
from __future__ import annotations

import posixpath

import fsspec
import pandas as pd

from featurize.genres import parse_genres

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".flv", ".wmv")
SPLITS = ("train", "val", "test", "")


class ManifestError(ValueError):
    pass


def _is_url(path: str) -> bool:
    return "://" in path


def _join(base: str, path: str) -> str:
    if _is_url(path) or path.startswith("/"):
        return path
    return posixpath.normpath(posixpath.join(base, path)) if not _is_url(base) else f"{base.rstrip('/')}/{path}"


def read_manifest(source: str) -> pd.DataFrame:
    """-> DataFrame(trailer_id, path (absolute or URL), genres (list), split), one row per trailer."""
    fs, root = fsspec.core.url_to_fs(source)
    if not fs.exists(root):
        raise ManifestError(f"input {source} does not exist")
    proto = source.split("://", 1)[0] + "://" if _is_url(source) else ""
    if fs.isdir(root):
        files = sorted(p for p in fs.find(root) if p.lower().endswith(VIDEO_SUFFIXES))
        if not files:
            raise ManifestError(f"no video files ({', '.join(VIDEO_SUFFIXES)}) under {source}")
        rel = [posixpath.relpath(p, root) for p in files]
        ids = pd.Series([posixpath.splitext(r)[0] for r in rel])     # a file's id is its name without extension,
        clash = ids.duplicated(keep=False).to_numpy()                 # as when the file is given alone;
        ids[clash] = [r for r, c in zip(rel, clash) if c]             # a.mp4 beside a.mkv keep theirs
        df = pd.DataFrame({"trailer_id": ids, "path": [proto + p for p in files]})
        df["genres"] = [[] for _ in range(len(df))]
        df["split"] = ""
        return df
    with fs.open(root, "rb") as fh:
        df = pd.read_parquet(fh) if root.endswith(".parquet") else pd.read_csv(fh, dtype=str, keep_default_na=False)
    missing = {"trailer_id", "path"} - set(df.columns)
    if missing:
        raise ManifestError(f"manifest {source} lacks column(s) {sorted(missing)}")
    df["trailer_id"] = df["trailer_id"].astype(str)
    dup = df["trailer_id"][df["trailer_id"].duplicated()].unique()
    if len(dup):
        raise ManifestError(f"manifest {source}: duplicate trailer_id {list(dup[:5])}")
    base = proto + posixpath.dirname(root)
    df["path"] = [_join(base, str(p)) for p in df["path"]]
    try:
        df["genres"] = [parse_genres(g) for g in df["genres"]] if "genres" in df else [[] for _ in range(len(df))]
    except ValueError as e:
        raise ManifestError(f"manifest {source}: {e}") from None
    df["split"] = df["split"].fillna("").astype(str).str.strip().str.lower() if "split" in df else ""
    bad = sorted(set(df["split"]) - set(SPLITS))
    if bad:
        raise ManifestError(f"manifest {source}: unknown split value(s) {bad}; expected train, val or test")
    return df[["trailer_id", "path", "genres", "split"]].reset_index(drop=True)

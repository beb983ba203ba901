"""Near-duplicate trailers in a store: the cuts of one film (teaser, trailer 1 and 2, TV spots,
re-uploads) that would leak across a split.

A trailer's signature is what the store already holds: one embedding per shot (its keyframe's
features), L2-normalised, projected to `dim` dimensions by a fixed random matrix (cosines are
kept, Johnson-Lindenstrauss) and centred on the store's mean shot, which removes what every
shot shares (with random or generic backbones most of the cosine). Two cuts of one film share
shots whatever their order, size, codec or title card, so:

- candidates: every shot's nearest shots of other trailers (faiss: exact inner product for a
  small store, an HNSW graph past `exact_limit` shots: no all-pairs loop; measured growth about
  n^1.4 on 2 cores, docs/benchmarks.md);
- a pair's score: shots matched one to one (cosine >= `shot_similarity`, best first) over the
  shorter trailer's shots (an overlap coefficient: added or removed shots and a new title card
  cost little);
- groups: connected components over pairs scoring >= `min_score`.

faiss is chosen for the search because it is the maintained library with both an exact and
a graph index over dense float vectors (what shot embeddings are), in one wheel, with no
server; datasketch's MinHash needs sets and usearch lacks the exact index for small stores.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from featurize import store
from featurize.config import DedupConfig
from featurize.splits import divided_groups


def projection(in_dim: int, dim: int, seed: int = 0) -> np.ndarray:
    """(in_dim, dim) fixed Gaussian matrix; the identity when the features are already small."""
    if in_dim <= dim:
        return np.eye(in_dim, dtype=np.float32)
    rng = np.random.default_rng([seed, in_dim, dim])
    return (rng.standard_normal((in_dim, dim)) / np.sqrt(dim)).astype(np.float32)


def project(frames: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(t, in_dim) keyframe features -> (t, dim) float32, each row normalised first."""
    x = np.asarray(frames, np.float32).reshape(-1, matrix.shape[0])
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x @ matrix


@dataclass
class Signatures:
    """Every trailer's shot signatures in one matrix: rows `offsets[i]:offsets[i+1]` are trailer i's."""
    ids: list[str]
    vectors: np.ndarray              # (shots, dim) float32, centred and unit length
    offsets: np.ndarray              # (n + 1,) int64

    def of(self, i: int) -> np.ndarray:
        return self.vectors[self.offsets[i]:self.offsets[i + 1]]

    @property
    def owner(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.ids)), np.diff(self.offsets))


def signatures(ids: Sequence[str], projected: Sequence[np.ndarray]) -> Signatures:
    """Centre every shot on the mean shot of the whole store, then normalise."""
    sizes = np.array([len(p) for p in projected], np.int64)
    dim = next((p.shape[1] for p in projected if p.ndim == 2), 0)
    x = np.concatenate([np.asarray(p, np.float32).reshape(-1, dim) for p in projected]) if sizes.sum() else \
        np.zeros((0, dim), np.float32)
    if len(x):
        x = x - x.mean(0, keepdims=True)
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return Signatures(list(ids), np.ascontiguousarray(x, np.float32), np.concatenate([[0], np.cumsum(sizes)]))


def index_for(vectors: np.ndarray, exact_limit: int):
    """faiss index over unit vectors, by inner product: exact for a small store, HNSW above."""
    import faiss  # lazy: only the dedup job and its tests load it
    dim = vectors.shape[1]
    if len(vectors) <= exact_limit:
        index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexHNSWFlat(dim, 16, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 40
        index.hnsw.efSearch = 32
    index.add(vectors)
    return index


def candidate_pairs(sig: Signatures, cfg: DedupConfig) -> set[tuple[int, int]]:
    """Trailer pairs (i < j) with at least one shot among each other's nearest shots above the
    shot similarity: the only pairs scored."""
    if len(sig.vectors) == 0:
        return set()
    index = index_for(sig.vectors, cfg.exact_limit)
    k = min(cfg.neighbours + 1, len(sig.vectors))
    sims, nbrs = index.search(sig.vectors, k)
    owner = sig.owner
    a = np.repeat(owner, k)
    b = owner[np.clip(nbrs.ravel(), 0, None)]
    keep = (nbrs.ravel() >= 0) & (sims.ravel() >= cfg.shot_similarity) & (a != b)
    lo, hi = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
    return set(zip(lo.tolist(), hi.tolist()))


def match_shots(a: np.ndarray, b: np.ndarray, shot_similarity: float) -> list[tuple[int, int, float]]:
    """Shots of `a` and `b` paired one to one, most similar first, above the threshold:
    [(shot of a, shot of b, cosine)], shots counted from 0."""
    if not len(a) or not len(b):
        return []
    s = a @ b.T
    ii, jj = np.nonzero(s >= shot_similarity)
    order = np.argsort(-s[ii, jj], kind="stable")
    used_a, used_b, out = set(), set(), []
    for k in order:
        i, j = int(ii[k]), int(jj[k])
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            out.append((i, j, float(s[i, j])))
    return out


def pair_score(a: np.ndarray, b: np.ndarray, cfg: DedupConfig) -> tuple[float, list[tuple[int, int, float]]]:
    """(share of the shorter trailer's shots matched, the matches); 0 below `min_shared` matches."""
    matches = match_shots(a, b, cfg.shot_similarity)
    shortest = min(len(a), len(b))
    if not shortest or len(matches) < cfg.min_shared:       # one shared shot is a look-alike, not a cut
        return 0.0, matches
    return len(matches) / shortest, matches


@dataclass
class Pair:
    a: str
    b: str
    score: float
    shots_a: list[int]               # matched shots, numbered from 1 as people read them
    shots_b: list[int]


def find_pairs(sig: Signatures, cfg: DedupConfig) -> list[Pair]:
    """Every candidate pair with a score above 0, best first."""
    out = []
    for i, j in sorted(candidate_pairs(sig, cfg)):
        score, matches = pair_score(sig.of(i), sig.of(j), cfg)
        if score > 0:
            out.append(Pair(sig.ids[i], sig.ids[j], score, [m[0] + 1 for m in matches], [m[1] + 1 for m in matches]))
    out.sort(key=lambda p: (-p.score, p.a, p.b))
    return out


def groups(ids: Sequence[str], pairs: Sequence[Pair], min_score: float) -> dict[str, str]:
    """trailer id -> its group: connected components over pairs scoring >= `min_score`,
    each named after its smallest trailer id (a trailer alone is its own group)."""
    parent = {i: i for i in ids}

    def root(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for p in pairs:
        if p.score >= min_score and p.a in parent and p.b in parent:
            ra, rb = root(p.a), root(p.b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    members: dict[str, list[str]] = {}
    for i in ids:
        members.setdefault(root(i), []).append(i)
    return {i: min(m) for m in members.values() for i in m}


def straddling(group_of: dict[str, str], split_of: dict[str, str]) -> dict[str, list[str]]:
    """The groups whose trailers (those with a split) lie in more than one split."""
    ids = [t for t in split_of if split_of[t] and t in group_of]
    return divided_groups([split_of[t] for t in ids], [group_of[t] for t in ids])


DEDUP_DIR = "_dedup"              # STORE/_dedup/{pairs,groups}.parquet: beside the store's rows, never read as rows
PAIRS_SCHEMA = pa.schema([("trailer_a", pa.string()), ("trailer_b", pa.string()), ("score", pa.float32()),
                          ("shared_shots", pa.int32()), ("shots_a", pa.list_(pa.int32())),
                          ("shots_b", pa.list_(pa.int32())), ("near_duplicate", pa.bool_())])
GROUPS_SCHEMA = pa.schema([("trailer_id", pa.string()), ("group", pa.string()), ("group_size", pa.int32()),
                           ("split", pa.string())])


def default_output(store_path: str) -> str:
    return store_path.rstrip("/") + "/" + DEDUP_DIR


def pairs_table(pairs: Sequence[Pair], min_score: float) -> pa.Table:
    return pa.table({"trailer_a": [p.a for p in pairs], "trailer_b": [p.b for p in pairs],
                     "score": np.array([p.score for p in pairs], np.float32),
                     "shared_shots": np.array([len(p.shots_a) for p in pairs], np.int32),
                     "shots_a": [p.shots_a for p in pairs], "shots_b": [p.shots_b for p in pairs],
                     "near_duplicate": [p.score >= min_score for p in pairs]}, schema=PAIRS_SCHEMA)


def group_sizes(group_of: dict[str, str]) -> Counter:
    """group -> how many trailers it holds."""
    return Counter(group_of.values())


def groups_table(group_of: dict[str, str], split_of: dict[str, str]) -> pa.Table:
    sizes = group_sizes(group_of)
    ids = sorted(group_of)
    return pa.table({"trailer_id": ids, "group": [group_of[i] for i in ids],
                     "group_size": np.array([sizes[group_of[i]] for i in ids], np.int32),
                     "split": [split_of.get(i, "") for i in ids]}, schema=GROUPS_SCHEMA)


def write_tables(out: str, pairs: pa.Table, groups_t: pa.Table) -> dict[str, str]:
    """pairs.parquet and groups.parquet under `out` (local or s3://), each written whole."""
    fs, root = store._fs(out)
    fs.makedirs(root, exist_ok=True)
    files = {}
    for name, table in (("pairs", pairs), ("groups", groups_t)):
        path = f"{root.rstrip('/')}/{name}.parquet"
        with fs.open(path + ".tmp", "wb") as fh:
            pq.write_table(table, fh)
        fs.mv(path + ".tmp", path)
        files[name] = out.rstrip("/") + f"/{name}.parquet"
    return files


def read_groups(path: str) -> dict[str, str] | None:
    """trailer id -> group from a groups table (a file, or the folder holding groups.parquet);
    None when there is none."""
    fs, root = store._fs(path)
    if not root.endswith(".parquet"):
        root = root.rstrip("/") + "/groups.parquet"
    if not fs.exists(root):
        return None
    with fs.open(root, "rb") as fh:
        t = pq.read_table(fh, columns=["trailer_id", "group"])
    return dict(zip(t.column(0).to_pylist(), t.column(1).to_pylist()))


def store_leakage(store_path: str) -> dict:
    """What a run records of its store's near-duplicates: whether the dedup job's table is
    there, and the groups (and their trailers) that its current splits divide."""
    group_of = read_groups(default_output(store_path))
    if group_of is None:
        return {"dedup_table": False, "groups_straddling": 0, "trailers_straddling": []}
    t = store.read_table(store_path, columns=["trailer_id", "split"])
    split_of = dict(zip(t.column(0).to_pylist(), t.column(1).to_pylist()))
    divided = straddling(group_of, split_of)
    members = sorted(i for i, g in group_of.items() if g in divided and i in split_of)
    return {"dedup_table": True, "groups_straddling": len(divided), "trailers_straddling": members}

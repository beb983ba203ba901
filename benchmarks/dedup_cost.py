"""The dedup job's search cost as the catalogue grows (1x, 4x, 16x trailers), on synthetic
shot signatures, measured side by side in one process: wall time, pairs scored per second,
the signatures' and the process's memory. The job's read of the store (Ray Data) grows
linearly with the store and is left out: this measures what could grow faster.

Synthetic signatures: films whose shots lie near one of nine genre directions (look-alikes
share a genre), re-cut as the renderer does (reordered, some shots dropped, one or two new,
a title card), each cut's shots re-encoded (small noise)."""
from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from benchmarks.real_recuts import real_recuts
from featurize import dedup
from featurize.config import DedupConfig

DIM = 64


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def synthetic_signatures(n: int, seed: int = 0, recut_share: float = 0.3, shots: tuple[int, int] = (8, 32),
                         dim: int = DIM) -> tuple[list[str], list[np.ndarray], dict[str, str]]:
    """(trailer ids, each trailer's (shots, dim) signature before centring, trailer -> film)."""
    rng = np.random.default_rng(seed)
    genres = _unit(rng.standard_normal((9, dim)))
    title = _unit(rng.standard_normal(dim))
    ids, out, film = [], [], {}
    f = 0
    while len(ids) < n:
        g = genres[rng.integers(9)]
        plan = _unit(0.8 * g + 0.6 * _unit(rng.standard_normal((int(rng.integers(*shots)), dim))))
        cuts = 1 + (int(rng.integers(1, 4)) if rng.random() < recut_share else 0)
        for c in range(min(cuts, n - len(ids))):
            if c == 0:
                shot_set = plan
            else:
                keep = plan[np.sort(rng.choice(len(plan), max(2, int(len(plan) * rng.uniform(0.7, 0.9))), replace=False))]
                new = _unit(0.8 * g + 0.6 * _unit(rng.standard_normal((int(rng.integers(1, 3)), dim))))
                shot_set = np.concatenate([_unit(title + 0.3 * _unit(rng.standard_normal(dim)))[None], keep, new])
                shot_set = shot_set[np.r_[0, 1 + rng.permutation(len(shot_set) - 1)]]
            tid = f"f{f:06d}c{c}"
            ids.append(tid)
            out.append(_unit(shot_set + 0.015 * rng.standard_normal(shot_set.shape)))
            film[tid] = f"f{f:06d}"
        f += 1
    return ids, out, film


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def dedup_rows(base: int = 500, scales: tuple[int, ...] = (1, 4, 16), exact_limit: int = 0) -> list[dict[str, Any]]:
    """One row per scale: the search (candidates, scores, groups) timed on `base * scale`
    trailers; `exact_limit=0` runs every scale on the HNSW graph, so the rows compare growth."""
    cfg = DedupConfig(exact_limit=exact_limit)
    rows = []
    for s in scales:
        ids, projected, film = synthetic_signatures(base * s, seed=s)
        t0 = time.perf_counter()
        sig = dedup.signatures(ids, projected)
        pairs = dedup.find_pairs(sig, cfg)
        dedup.groups(ids, pairs, cfg.min_score)
        wall = time.perf_counter() - t0
        near = {(p.a, p.b) for p in pairs if p.score >= cfg.min_score}
        sizes = np.unique(list(film.values()), return_counts=True)[1]
        truth = int((sizes * (sizes - 1) // 2).sum())
        rows.append({"trailers": len(ids), "shots": int(len(sig.vectors)), "scale": s, "wall_s": round(wall, 3),
                     "pairs_scored": len(pairs), "pairs_scored_per_s": round(len(pairs) / wall, 1),
                     "trailers_per_s": round(len(ids) / wall, 1), "signature_mb": round(sig.vectors.nbytes / 2**20, 1),
                     "peak_rss_mb": round(_rss_mb(), 1), "near_duplicate_pairs": len(near),
                     "recall": round(sum(1 for a, b in near if film[a] == film[b]) / max(1, truth), 3),
                     "precision": round(sum(1 for a, b in near if film[a] == film[b]) / max(1, len(near)), 3)})
    first = rows[0]["wall_s"]
    for r in rows:
        r["time_vs_1x"] = round(r["wall_s"] / first, 2)
    return rows


def real_footage_dedup(work: Path, backbone: str = "resnet18") -> dict[str, Any]:
    """The dedup job on cuts of films made of real footage (`benchmarks.real_recuts`),
    featurized by the pipeline on the running Ray instance: pairs and groups against the
    films. Two later cuts of one film share only part of it, so a film is found when its cuts
    form one group; a group holding two films is a false join."""
    from ctt.config import load_config  # lazy: the synthetic rows need neither the pipeline nor Ray
    from ctt.experiment.dedup_run import find_near_duplicates  # lazy: as above
    from featurize.pipeline import run_featurize  # lazy: as above
    table, missing = real_recuts(work / "real_recuts")
    if missing:
        return {"skipped": missing}
    cfg = load_config(None, [f"featurize.backbone.name={backbone}", "featurize.backbone.weights=none"])
    out = work / "real_recuts" / "store"
    run_featurize(str(work / "real_recuts" / "manifest.csv"), str(out), cfg.featurize)
    summary = find_near_duplicates(str(out), cfg)
    film = dict(zip(table.trailer_id, table.film))
    groups = dedup.read_groups(summary["files"]["groups"]) or {}
    members: dict[str, set[str]] = {}
    for tid, g in groups.items():
        members.setdefault(g, set()).add(film[tid])
    pairs = pq.read_table(summary["files"]["pairs"]).to_pandas()
    near = pairs[pairs.near_duplicate]
    same = sum(film[a] == film[b] for a, b in zip(near.trailer_a, near.trailer_b))
    truth = sum(n * (n - 1) // 2 for n in table.film.value_counts())
    films_whole = sum(1 for f in set(table.film)
                      if len({groups.get(t) for t in table.trailer_id[table.film == f]}) == 1)
    return {"trailers": len(table), "films": table.film.nunique(), "near_pairs": len(near),
            "pair_precision": same / max(1, len(near)), "pair_recall": same / max(1, truth),
            "films_in_one_group": films_whole, "groups_joining_films": sum(len(v) > 1 for v in members.values()),
            "backbone": f"{backbone} (random init)"}

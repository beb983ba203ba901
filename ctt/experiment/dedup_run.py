"""The dedup job: a store's near-duplicate trailers found on the cluster, written beside the
store, and recorded as an MLflow run (kind dedup) with the counts and a picture of the top pairs."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from ctt.config import Config
from ctt.experiment.distributed.signatures import shot_signatures
from ctt.experiment.tracking import recording
from featurize import dedup, qa, store


def find_near_duplicates(store_path: str, cfg: Config, output: str = "") -> dict[str, Any]:
    """Signatures (Ray Data) -> candidate pairs and scores (faiss, in the driver) -> pairs and
    groups tables at `output` (default STORE/_dedup). Returns the summary."""
    d = cfg.dedup
    t0 = time.time()
    settings = store.require_settings(store_path)
    in_dim = int(settings["settings"]["feature_dim"])
    ids, splits, projected = shot_signatures(store_path, in_dim, d.dim, d.seed)
    t_read = time.time()
    sig = dedup.signatures(ids, projected)
    pairs = dedup.find_pairs(sig, d)
    group_of = dedup.groups(ids, pairs, d.min_score)
    split_of = dict(zip(ids, splits))
    divided = dedup.straddling(group_of, split_of)
    t_search = time.time()
    output = output or dedup.default_output(store_path)
    files = dedup.write_tables(output, dedup.pairs_table(pairs, d.min_score), dedup.groups_table(group_of, split_of))
    near = [p for p in pairs if p.score >= d.min_score]
    sizes = dedup.group_sizes(group_of)
    return {"store": store_path, "output": output, "files": files, "trailers": len(ids),
            "shots": int(len(sig.vectors)), "pairs_scored": len(pairs), "near_duplicate_pairs": len(near),
            "groups": sum(1 for n in sizes.values() if n > 1), "trailers_in_groups": sum(n for n in sizes.values() if n > 1),
            "largest_group": max(sizes.values(), default=0), "groups_straddling": len(divided),
            "straddling": {str(g): s for g, s in list(divided.items())[:20]},
            "top_pairs": [{"trailer_a": p.a, "trailer_b": p.b, "score": round(p.score, 3), "shots_a": p.shots_a,
                           "shots_b": p.shots_b} for p in near[:d.top_pairs]],
            "read_s": round(t_read - t0, 2), "search_s": round(t_search - t_read, 2),
            "wall_s": round(time.time() - t0, 2), "started_at": t0}


def log_dedup_run(cfg: Config, summary: dict[str, Any]) -> str:
    """The run: params (the dedup section, the store), the counts as metrics, the summary, the
    near-duplicate pairs as a table, and the top pairs' matched keyframes side by side."""
    path = summary["store"]
    settings = store.require_settings(path)
    with recording.record_run("dedup", recording.run_name(cfg, "dedup"), cfg=cfg, job="dedup",
                              params={"store": path, "output": summary["output"]}, tags={"store": path},
                              store=recording.StoreInput(path, store.document(settings), store.files(path), context="input"),
                              started=summary.get("started_at")) as run_id:
        recording.log_metrics(run_id, {k: float(summary[k]) for k in (
            "trailers", "shots", "pairs_scored", "near_duplicate_pairs", "groups", "trailers_in_groups",
            "largest_group", "groups_straddling", "wall_s")})
        recording.log_dict(run_id, {k: v for k, v in summary.items() if k != "started_at"}, "dedup/summary.json")
        if summary["top_pairs"]:
            with tempfile.TemporaryDirectory() as tmp:
                png = qa.pair_sheet(path, summary["top_pairs"], Path(tmp) / "top_pairs.png")
                if png is not None:
                    recording.log_files(run_id, [png], "dedup")
    return run_id

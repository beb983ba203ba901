"""Find near-duplicate trailers in a feature store: the cuts of one film (teaser, trailers,
TV spots, re-uploads at another size) that would leak across a split.

    python jobs/dedup.py --features data/store [--output DIR] [dedup.min_score=0.5 ...]
    ray job submit --working-dir . -- python jobs/dedup.py --features s3://bucket/store

Each trailer's signature is its shots' keyframe features (what the store holds), projected
small on the cluster; pairs that share shots are found with faiss and scored by the share of
the shorter trailer's shots they share, one to one, whatever their order, size or codec.
Writes STORE/_dedup/pairs.parquet (trailer_a, trailer_b, score, shared_shots, the matched
shots from 1, near_duplicate) and groups.parquet (trailer_id, group, group_size, split), logs
an MLflow run (kind dedup) with the counts and the top pairs' matched keyframes, and prints a
summary. Then `jobs/split.py --groups STORE/_dedup/groups.parquet` keeps each group in one
split; training runs on the store record how many groups their splits divide.
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jobs._common import config_from, fail, init_ray, parser, require, setup_logging, store_or_exit  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--features", help="feature store folder; local or s3:// (required)")
    p.add_argument("--output", default="", help="folder for pairs.parquet and groups.parquet (default STORE/_dedup)")
    args = p.parse_args(argv)
    setup_logging()
    cfg = config_from(args, "dedup")
    require(args, "features")
    store_or_exit(args.features)                    # before Ray or MLflow: a usage error
    # lazy: Ray, faiss and MLflow take seconds to import; --help and usage errors answer without them
    from ctt.experiment.dedup_run import find_near_duplicates, log_dedup_run
    from ctt.experiment.tracking.connection import TrackingUnavailable, connect
    try:
        connect(cfg.tracking.experiment)
        init_ray()
        summary = find_near_duplicates(args.features, cfg, args.output)
    except TrackingUnavailable as e:
        fail(str(e))
    print("dedup summary: " + json.dumps({k: v for k, v in summary.items()             # pairs: in the run and the table
                                          if k not in ("started_at", "top_pairs", "straddling")}, indent=2))
    print(f"MLflow run {log_dedup_run(cfg, summary)}")
    print(f"{summary['trailers']} trailers: {summary['near_duplicate_pairs']} near-duplicate pairs in "
          f"{summary['groups']} groups ({summary['trailers_in_groups']} trailers), {summary['groups_straddling']} "
          f"divided by the store's splits; next: python jobs/split.py --groups {summary['files']['groups']} ...")
    if not summary["trailers"]:
        fail(f"{args.features} holds no trailers: nothing to compare")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The paper's baselines as MLflow runs: SVMs on low-level features, or random scores.

    python jobs/baselines.py --features STORE --method vllf [--method av --method random] [key=value ...]

vllf / av: one-vs-all SVMs with probability outputs on the standardised `vllf` or
`av` vectors of the store, grid-searched per genre on the validation split
(baseline.C x baseline.kernels x baseline.gamma), one Ray task per grid point.
random: uniform random probabilities with a fixed seed (baseline.seed).
probe (beyond the paper): per-genre logistic regression on standardised pooled columns,
baseline.probe_input = frames (keyframe mean + max), spectrograms (log-spectrogram mean +
std per bin), both, or av / vllf (the SVMs' own vectors); regularisation chosen by 5-fold cross-validation on train. Logged
as method probe-<input>; the report sets each model beside its probe.
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jobs._common import config_from, fail, init_ray, parser, require, setup_logging, store_or_exit  # noqa: E402
from ctt.config import BASELINES  # noqa: E402



def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--features", help="feature store written by jobs/featurize.py (local or s3://; required)")
    p.add_argument("--method", action="append", choices=BASELINES,
                   help="vllf, av, random or probe; repeat to run several (one MLflow run each; required)")
    p.add_argument("--experiment", help="MLflow experiment (overrides tracking.experiment)")
    args = p.parse_args(argv)
    setup_logging()
    args.overrides += [f"tracking.experiment={args.experiment}"] * bool(args.experiment)
    cfg = config_from(args, "baselines")
    require(args, "features", "method")
    store_or_exit(args.features)                   # before Ray or MLflow: a missing store is a usage error
    # lazy: Ray, torch and MLflow take about 7 s to import; --help and usage errors answer without them
    from ctt.experiment.baselines import BaselineError, run_baseline
    from ctt.tables import metrics_table
    from ctt.experiment.tracking.connection import TrackingUnavailable, connect
    rows = []
    try:
        connect(cfg.tracking.experiment)             # fail before any work if MLflow is unreachable
        if any(m != "random" for m in args.method):
            init_ray(progress=False)
        for method in args.method:
            summary = run_baseline(args.features, method, cfg)
            print(f"{method} summary: " + json.dumps({k: summary[k] for k in ("run_id", "run_name", "wall_s", "run_url") if k in summary}))
            rows.append((method, summary["test"]))
    except (TrackingUnavailable, BaselineError) as e:
        fail(str(e))
    print("\n" + metrics_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

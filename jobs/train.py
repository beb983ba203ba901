"""Train one model of the paper on a feature store with Ray Train (DDP); one MLflow run.

Models: ctt-a, ctt-b, ctt-c (keyframes), ctt-s (spectrograms), lstm (keyframes, baseline).

    python jobs/train.py --features data/store --model ctt-c [--config configs/ctt-c_f3_n256.yaml] [key=value ...]
    ray job submit --working-dir . --runtime-env-json '{"env_vars": {"MLFLOW_TRACKING_URI": "http://..."}}' \\
        -- python jobs/train.py --features s3://bucket/store --model ctt-c

Prints the test metrics beside a uniform-random baseline on the same trailers.
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ctt.config import MODELS  # noqa: E402
from jobs._common import ConfigError, config_from, fail, init_ray, parser, setup_logging  # noqa: E402

MEASURES = ("auprc_macro", "auprc_micro", "auprc_weighted", "ranking_loss")


def format_table(summary: dict) -> str:
    lines = [f"{'method':<14}" + "".join(f"{m:>16}" for m in MEASURES)]
    for name, key in ((summary.get("model", "model"), "test"), ("random", "random_baseline")):
        lines.append(f"{name:<14}" + "".join(f"{summary[key]['test_' + m]:>16.3f}" for m in MEASURES))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--features", required=True, help="feature store written by jobs/featurize.py (local or s3://)")
    p.add_argument("--model", choices=list(MODELS), help="overrides model.name")
    p.add_argument("--experiment", help="MLflow experiment (overrides tracking.experiment)")
    args = p.parse_args(argv)
    setup_logging()
    if args.model:
        args.overrides.append(f"model.name={args.model}")
    if args.experiment:
        args.overrides.append(f"tracking.experiment={args.experiment}")
    from ctt.distributed import FeatureStoreError, run_training
    from ctt.tracking import TrackingUnavailable, connect
    try:
        cfg = config_from(args)
        connect(cfg.tracking.experiment)             # fail before any work if MLflow is unreachable
        init_ray(progress=False)
        summary = run_training(args.features, cfg)
    except (ConfigError, TrackingUnavailable, FeatureStoreError) as e:
        fail(str(e))
    summary["model"] = cfg.model.name
    print("train summary: " + json.dumps({k: v for k, v in summary.items() if k not in ("test", "random_baseline")}, indent=2))
    print("\ntest metrics (AU(PRC) higher is better, ranking loss lower is better):")
    print(format_table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

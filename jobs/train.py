"""Train one model of the paper on a feature store with Ray Train (DDP); one MLflow run.

Models: ctt-a, ctt-b, ctt-c (keyframes), ctt-s (spectrograms), lstm (keyframes, baseline).

    python jobs/train.py --features data/store --model ctt-c [--config configs/ctt-c_f3_n256.yaml] [key=value ...]
    ray job submit --working-dir . --runtime-env-json '{"env_vars": {"MLFLOW_TRACKING_URI": "http://..."}}' \\
        -- python jobs/train.py --features s3://bucket/store --model ctt-c

Prints the test metrics beside a uniform-random baseline on the same trailers. A run whose
driver died (a killed job, a lost head node) continues where its last checkpoint left it,
in the same MLflow run and with the config it logged:

    python jobs/train.py --resume RUN_ID

--seeds N (or train.seeds=[0,1,2]) trains N repeats, seeds train.seed .. train.seed + N - 1,
as child runs of one parent run that logs the mean and std of every test metric.
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jobs._common import USAGE, config_from, fail, init_ray, parser, setup_logging, store_or_exit  # noqa: E402
from ctt.config import MODELS  # noqa: E402



def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--features", help="feature store written by jobs/featurize.py (local or s3://)")
    p.add_argument("--resume", metavar="RUN_ID", help="continue this unfinished run from its last checkpoint")
    p.add_argument("--model", choices=list(MODELS), help="overrides model.name")
    p.add_argument("--experiment", help="MLflow experiment (overrides tracking.experiment)")
    p.add_argument("--seeds", type=int, metavar="N", help="N repeats over seeds under one parent run")
    args = p.parse_args(argv)
    setup_logging()
    args.overrides += [f"model.name={args.model}"] * bool(args.model)
    args.overrides += [f"tracking.experiment={args.experiment}"] * bool(args.experiment)
    if args.resume and (args.config or args.overrides or args.model or args.experiment):
        fail("--resume continues a run with the config it logged: no --config, --model, --experiment or overrides",
             USAGE)
    if args.seeds is not None and args.seeds < 1:
        fail("--seeds N: N must be >= 1", USAGE)
    if args.seeds and args.resume:
        fail("--resume continues one run: resume each child of a repeat by its own id", USAGE)
    cfg = config_from(args, "train")
    if not (args.features or args.resume):
        fail("give --features STORE (a new run) or --resume RUN_ID", USAGE)
    if args.features:
        store_or_exit(args.features)               # before Ray or MLflow: a missing store is a usage error
    if args.seeds:
        cfg.train.seeds = list(range(cfg.train.seed, cfg.train.seed + args.seeds))
    # lazy: Ray, torch and MLflow take about 7 s to import; --help and usage errors answer without them
    from ctt.data import FeatureStoreError, describe_store
    from ctt.experiment.distributed.checkpoints import StorageError
    from ctt.experiment.distributed.train_driver import resume_training, run_training
    from ctt.experiment.repeats import run_repeats
    from ctt.experiment.tracking.connection import TrackingUnavailable, connect
    from ctt.experiment.tracking.reading import ModelNotFound
    from ctt.tables import metrics_table, spread_table
    try:
        if args.resume:
            init_ray(progress=False)
            summary = resume_training(args.resume, args.features)
        else:
            connect(cfg.tracking.experiment)         # fail before any work if MLflow is unreachable
            info = describe_store(args.features, cfg.model.name)   # ... or if the store cannot be trained on
            init_ray(progress=False)
            if cfg.train.seeds:
                summary = run_repeats(cfg, "train", cfg.model.name, cfg.train.seeds,
                                      lambda c, tags: run_training(args.features, c, info=info, tags=tags))
            else:
                summary = run_training(args.features, cfg, info=info)
    except (TrackingUnavailable, FeatureStoreError, StorageError, ModelNotFound) as e:
        fail(str(e))
    if "spread" in summary:
        print("train summary: " + json.dumps({k: summary[k] for k in ("run_id", "run_name", "seeds", "children",
                                                                       "run_url") if k in summary}, indent=2))
        print("\ntest metrics over seeds (mean ± std):")
        print(spread_table([(summary["method"], summary["spread"])], {summary["method"]: len(summary["seeds"])}))
        return 0
    print("train summary: " + json.dumps({k: v for k, v in summary.items() if k not in ("test", "random_baseline")},
                                         indent=2))
    print("\ntest metrics (AU(PRC) higher is better, ranking loss lower is better):")
    print(metrics_table([(summary["model"], summary["test"]), ("random", summary["random_baseline"])]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

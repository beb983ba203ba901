"""Turn trailers into the feature store: shots, keyframes, backbone features (Ray Data).

    python jobs/featurize.py --input data/samples/manifest.csv --output data/store [--config configs/...yaml] [key=value ...]
    ray job submit --working-dir . -- python jobs/featurize.py --input s3://bucket/manifest.csv --output s3://bucket/store

A rerun skips trailers already in the store; --retry-errors tries recorded failures again;
--dry-run says what a run would do (and the driver's memory for it) without doing it.
Each trailer is stored once, whatever was killed: a run takes the store when it starts (a
killed run's late writes are dropped) and keeps one row per trailer when it starts and ends.

    python jobs/featurize.py --check STORE [--fix]

reports trailers stored twice, trailers both stored and in _errors, and non-finite values
(exit 1 when there are any); --fix keeps one row per trailer and clears resolved errors.

The manifest: CSV or Parquet with columns trailer_id,path[,genres][,split]. `path` is relative
to the manifest's folder, absolute, or s3://; `genres` are written action|scifi, from
action adventure comedy crime drama horror romance scifi thriller (any case; Sci-Fi and
Science Fiction are scifi); `split` is train, val or test. A folder as --input takes every video file under it, without labels; a file's
trailer_id is its path under the folder without the extension (`trailers/bikes.mp4` ->
`bikes`), as when `predict.py` is given the file itself.
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jobs._common import config_from, fail, init_ray, manifest_or_exit, parser, require, setup_logging  # noqa: E402



def check_store(path: str, fix: bool) -> int:
    from featurize import store  # lazy: --help and the other commands answer without pyarrow
    try:
        store.require_settings(path)
    except store.NotAStore as e:
        fail(str(e), code=2)
    fixed = store.compact(path) if fix else None
    report = store.check(path) | ({"fixed": fixed} if fix else {})
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--input", help="manifest (CSV/Parquet) or a folder of videos; local or s3:// (required)")
    p.add_argument("--output", help="feature store folder; local or s3:// (required)")
    p.add_argument("--retry-errors", action="store_true", help="featurize trailers in STORE/_errors again")
    p.add_argument("--dry-run", action="store_true",
                   help="plan only: read the manifest, check the store, count what is to do; no Ray, no writes")
    p.add_argument("--check", metavar="STORE", help="report what STORE holds that it should not (no Ray)")
    p.add_argument("--fix", action="store_true", help="with --check: keep one row per trailer, clear resolved errors")
    args = p.parse_args(argv)
    setup_logging()
    if args.check:
        return check_store(args.check, args.fix)
    cfg = config_from(args, "featurize")
    require(args, "input", "output")
    manifest = manifest_or_exit(args.input)        # before Ray or MLflow: a bad input is a usage error
    # lazy: torch (the feature size) but no Ray or MLflow: the plan answers in seconds
    from featurize.manifest import ManifestError
    from featurize.shot_detectors import DetectorUnavailable
    from featurize.store import StoreMismatch
    if args.dry_run:
        from featurize.plan import plan  # lazy: see above
        try:
            summary = plan(args.input, args.output, cfg.featurize, args.retry_errors, dry_run=True,
                           manifest=manifest).summary
        except (ManifestError, StoreMismatch, DetectorUnavailable, FileNotFoundError) as e:
            fail(str(e))
        print("featurize plan: " + json.dumps(summary, indent=2))
        return 0
    # lazy: Ray, torch and MLflow take about 7 s to import; --help and usage errors answer without them
    from ctt.experiment.featurize_run import log_featurize_run
    from ctt.experiment.tracking.connection import TrackingUnavailable, connect
    from featurize.backbone import WeightsUnavailable, check_weights
    from featurize.pipeline import run_featurize, verdict
    try:
        check_weights(cfg.featurize.backbone)        # fail before any work if weights are missing
        connect(cfg.tracking.experiment)             # ... or if MLflow is unreachable
        init_ray()
        summary = run_featurize(args.input, args.output, cfg.featurize, retry_errors=args.retry_errors,
                                manifest=manifest)
    except (ManifestError, StoreMismatch, WeightsUnavailable, DetectorUnavailable, FileNotFoundError,
            TrackingUnavailable) as e:
        fail(str(e))
    print("featurize summary: " + json.dumps(summary, indent=2))
    problem = verdict(summary, cfg.featurize.max_failed_fraction)
    print(f"MLflow run {log_featurize_run(cfg, summary, problem)}")
    if problem:
        fail(f"{problem}; see {args.output}/_errors")      # everything that could be written is written
    return 0


if __name__ == "__main__":
    sys.exit(main())

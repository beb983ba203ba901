"""Genre probabilities and predicted genres for new trailers, as JSON.

    python jobs/predict.py --model RUN_ID|models:/NAME/VERSION|models:/NAME@ALIAS|FOLDER VIDEO_OR_DIR_OR_MANIFEST...
    python jobs/predict.py --model models:/ctt-mmc-visual@champion trailers/ --output s3://bucket/preds/ (Parquet)

Each input is featurized exactly as the model's training data was (the featurizer
settings travel with the run), then scored by the model: a visual run, an audio run,
or a fused CTT-MMC-TN run (both members). Predicted genres use the per-genre
thresholds chosen on validation (F1), or --threshold for all. Unreadable inputs are
listed under "errors". --output writes a Parquet dataset through a Ray Data batch job
instead of printing JSON (for large inputs). Inputs are what follows `--`, the values of
--input, and the positional arguments that are not config overrides (`section.key=value`
with no such file); the model is resolved before anything starts.

    python jobs/predict.py --model RUN_ID featurize.backbone.batch_size=16 -- a.mp4 b=c.mp4
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jobs._common import USAGE, config_from, fail, init_ray, parser, split_overrides  # noqa: E402



def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--model", required=True, help="run id, runs:/ID, models:/NAME/VERSION, models:/NAME@ALIAS or a folder")
    p.add_argument("--input", action="append", default=[], help="video file, folder or manifest (repeatable)")
    p.add_argument("--threshold", type=float, help="one threshold for every genre instead of the model's")
    p.add_argument("--plot", help="write a bar chart per trailer, and a contact sheet of the shots behind its "
                                  "genres (evidence), into this folder")
    p.add_argument("--store", help="keep the new trailers' features in this store (default: a temp folder)")
    p.add_argument("--output", help="write predictions as Parquet here (Ray Data batch job) instead of JSON")
    argv = sys.argv[1:] if argv is None else list(argv)
    after = argv.index("--") if "--" in argv else len(argv)
    args, rest = p.parse_known_args(argv[:after])
    inputs, args.overrides = split_overrides(rest + args.overrides)
    inputs = args.input + inputs + argv[after + 1:]
    if not inputs:
        fail("no input: give video files, folders or manifests", USAGE)
    cfg = config_from(args, "predict")
    # lazy: MLflow alone (1.5 s): a --model that names nothing is a usage error before torch and Ray load
    from ctt.experiment.tracking.connection import TrackingUnavailable
    from ctt.experiment.tracking.registry import ModelNotFound, resolve_model
    if not Path(args.model).is_dir():
        try:
            resolve_model(args.model)
        except ModelNotFound as e:
            fail(str(e), USAGE)
        except TrackingUnavailable as e:
            fail(str(e))
    # lazy: Ray, torch and MLflow take about 7 s to import; --help and usage errors answer without them
    from ctt.experiment.classify import load_predictor, plot_evidence, plot_predictions, run_predict
    from featurize.manifest import ManifestError
    try:
        predictor = load_predictor(args.model)          # a wrong --model fails before Ray starts
        init_ray(progress=False)
        result = run_predict(predictor, inputs, args.store, args.output, args.threshold, cfg.featurize)
    except (ModelNotFound, TrackingUnavailable, ManifestError) as e:
        fail(str(e))
    if args.plot and "trailers" in result:
        result["plots"] = plot_predictions(result, Path(args.plot))
        result["evidence_plots"] = plot_evidence(result, predictor, Path(args.plot), cfg.featurize)
    print(json.dumps(result, indent=2, default=str))
    return 1 if result.get("errors") and not result.get("trailers", True) else 0     # nothing could be read


if __name__ == "__main__":
    sys.exit(main())

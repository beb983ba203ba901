"""Genre probabilities and predicted genres for new trailers, as JSON.

    python jobs/predict.py --model RUN_ID|models:/NAME/VERSION|models:/NAME@ALIAS|FOLDER VIDEO_OR_DIR_OR_MANIFEST...
    python jobs/predict.py --model models:/ctt-mmc-visual@champion trailers/ --output s3://bucket/preds/ (Parquet)

Each input is featurized exactly as the model's training data was (the featurizer
settings travel with the run), then scored by the model: a visual run, an audio run,
or a fused CTT-MMC-TN run (both members). Predicted genres use the per-genre
thresholds chosen on validation (F1), or --threshold for all. Unreadable inputs are
listed under "errors". --output writes a Parquet dataset through a Ray Data batch job
instead of printing JSON (for large inputs).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jobs._common import ConfigError, config_from, fail, init_ray, parser  # noqa: E402


def plot(result: dict, folder: Path) -> list[str]:
    """One Figure 7-style chart per trailer: probabilities, predicted genres dark, thresholds marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ctt.genres import GENRES
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for t in result["trailers"]:
        fig, ax = plt.subplots(figsize=(5, 3.4))
        probs = [t["probabilities"][g] for g in GENRES]
        ax.barh(range(len(GENRES)), probs, color=["#1f5fa8" if g in t["genres"] else "#b8c7d9" for g in GENRES])
        ax.scatter([result["thresholds"][g] for g in GENRES], range(len(GENRES)), marker="|", color="k", s=120)
        ax.set_yticks(range(len(GENRES)), GENRES, fontsize=8)
        ax.invert_yaxis()
        ax.set(xlim=(0, 1), title=f"{t['trailer_id']}: {', '.join(t['genres']) or 'no genre'}")
        fig.tight_layout()
        path = folder / f"{t['trailer_id'].replace('/', '_')}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        out.append(str(path))
    return out


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--model", required=True, help="run id, runs:/ID, models:/NAME/VERSION, models:/NAME@ALIAS or a folder")
    p.add_argument("--input", action="append", default=[], help="video file, folder or manifest (repeatable)")
    p.add_argument("--threshold", type=float, help="one threshold for every genre instead of the model's")
    p.add_argument("--plot", help="write a bar chart per trailer into this folder")
    p.add_argument("--store", help="keep the new trailers' features in this store (default: a temp folder)")
    p.add_argument("--output", help="write predictions as Parquet here (Ray Data batch job) instead of JSON")
    args, rest = p.parse_known_args(argv)
    inputs = args.input + [r for r in rest + args.overrides if "=" not in r or os.path.exists(r)]
    args.overrides = [r for r in args.overrides if "=" in r and not os.path.exists(r)]
    if not inputs:
        fail("no input: give video files, folders or manifests")
    from ctt.predict import ModelNotFound, run_predict
    from ctt.tracking import TrackingUnavailable
    from featurize.manifest import ManifestError
    try:
        cfg = config_from(args)
        init_ray(progress=False)
        result = run_predict(args.model, inputs, args.store, args.output, args.threshold, cfg.featurize)
    except (ConfigError, ModelNotFound, TrackingUnavailable, ManifestError) as e:
        fail(str(e))
    if args.plot and "trailers" in result:
        result["plots"] = plot(result, Path(args.plot))
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

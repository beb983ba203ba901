"""CTT-MMC-TN: fuse a visual run and an audio run into one MLflow run.

    python jobs/fuse.py --visual RUN_ID --audio RUN_ID [--experiment NAME] [key=value ...]

The visual weight is chosen on the validation split from {1.0, 0.95, ..., 0.0}
(fusion.step); trailers without audio keep their visual probabilities. Needs no
Ray: it reads the two runs' logged predictions. Two parents of repeats over seeds
(`jobs/train.py --seeds N`) are fused child by child, paired by seed, under a parent run.
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jobs._common import config_from, fail, parser, setup_logging  # noqa: E402



def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--visual", required=True, help="MLflow run id of a visual model (ctt-a/b/c or lstm)")
    p.add_argument("--audio", required=True, help="MLflow run id of an audio model (ctt-s)")
    p.add_argument("--experiment", help="MLflow experiment for the fused run (overrides tracking.experiment)")
    args = p.parse_args(argv)
    setup_logging()
    args.overrides += [f"tracking.experiment={args.experiment}"] * bool(args.experiment)
    cfg = config_from(args, "fuse")
    # lazy: Ray, torch and MLflow take about 7 s to import; --help and usage errors answer without them
    from ctt.experiment.method_runs import run_fusion
    from ctt.tables import metrics_table, spread_table
    from ctt.predictor import NotAGenreModel
    from ctt.experiment.tracking.connection import TrackingUnavailable
    try:
        summary = run_fusion(args.visual, args.audio, cfg)
    except (TrackingUnavailable, FileNotFoundError, NotAGenreModel, LookupError) as e:
        fail(str(e))
    if "spread" in summary:
        print("fuse summary: " + json.dumps({k: summary[k] for k in ("run_id", "run_name", "seeds", "children",
                                                                      "run_url") if k in summary}, indent=2))
        print(spread_table([("ctt-tn", summary["spread"])], {"ctt-tn": len(summary["seeds"])}))
        return 0
    w = summary["visual_weight"]
    print("visual weight chosen on val: " + (f"{w:.2f}" if isinstance(w, float) else
                                             "per genre " + ", ".join(f"{x:.2f}" for x in w)))
    shown = ("run_id", "run_name", "registered", "run_url")
    print("fuse summary: " + json.dumps({k: summary[k] for k in shown if k in summary}, indent=2))
    print(metrics_table([("ctt-tn", summary["test"])]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The comparison of an MLflow experiment's runs: the paper's Table 3 and Table 4, decisions
at each run's thresholds, calibration, config differences, PR curves, reliability diagram,
predictions.

    python jobs/report.py --experiment ctt-mmc-demo [--output reports/ctt-mmc-demo]
    python jobs/report.py --experiment E --filter "params.model.name = 'ctt-c'"
    python jobs/report.py --experiment E --runs RUN_ID RUN_ID ...

By default takes the latest finished run of each method (train, fuse and baseline runs);
--filter (an MLflow search expression) or --runs takes every run named, several per
method (told apart by run name). Writes report.md, report.html (the same page for a
browser), pr_curves.png, reliability.png and predictions.png, logs them as a `report` run
in the same experiment, and prints Table 3 with the paper's numbers in brackets.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jobs._common import fail, setup_logging  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", required=True, help="MLflow experiment name")
    p.add_argument("--output", help="folder for report.md and the PNGs (default reports/EXPERIMENT)")
    p.add_argument("--trailers", type=int, default=6, help="test trailers in the predictions chart")
    p.add_argument("--filter", default="", help="MLflow search expression: every finished run matching it "
                                                "(e.g. \"params.model.name = 'ctt-c'\")")
    p.add_argument("--runs", nargs="+", default=None, metavar="RUN_ID", help="compare exactly these runs")
    args = p.parse_args(argv)
    setup_logging()
    # lazy: Ray, torch and MLflow take about 7 s to import; --help answers without them
    from ctt.experiment.report import run_report
    from ctt.experiment.tracking.reading import BadFilter
    from ctt.experiment.tracking.connection import TrackingUnavailable
    out = Path(args.output or Path("reports") / args.experiment)
    try:
        summary = run_report(args.experiment, out, args.trailers, args.filter, args.runs)
    except BadFilter as e:
        fail(str(e), code=2)
    except (LookupError, TrackingUnavailable) as e:
        fail(str(e))
    print(f"report of experiment '{args.experiment}' (test split; the paper's LMTD-9 numbers in brackets):\n")
    print(summary["table"])
    print(f"\nwritten: {', '.join(summary['files'].values())}   (MLflow run {summary['run_id']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

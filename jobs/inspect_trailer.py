"""Pictures of what featurize saw in a trailer: its keyframes and its shot cuts.

    python jobs/inspect_trailer.py STORE TRAILER_ID [--output DIR]      a stored trailer, decoded again from
                                                                its source with the store's settings
    python jobs/inspect_trailer.py VIDEO [NAME] [--output DIR]          any video, with the config's settings
    python jobs/inspect_trailer.py STORE --sample 6 [--output DIR]      the store's histograms and 6 trailers

Writes NAME_keyframes.png (a contact sheet of the keyframes with their times) and
NAME_shots.png (the smoothed HSV similarity of consecutive frames, or 1 - TransNetV2's
transition probability with featurize.shots.detector=transnetv2, the threshold and the
cuts found, the keyframe times); with a store, store_overview.png (keyframes per trailer,
shot lengths, durations, failures by reason). The featurize job logs the same pictures
for `featurize.qa_samples` trailers into its MLflow run.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jobs._common import USAGE, config_from, fail, parser, split_overrides  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.usage = "inspect_trailer.py [options] STORE_OR_VIDEO [TRAILER_ID] [key=value ...]"
    p.add_argument("--sample", type=int, default=0, help="with a store: this many trailers, and the histograms")
    p.add_argument("--output", help="folder for the PNGs (default reports/inspect)")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    given, args.overrides = split_overrides(args.overrides)
    if not 1 <= len(given) <= 2:
        fail("give STORE_OR_VIDEO and, for a store, a TRAILER_ID (see --help)", USAGE)
    args.target, args.trailer = given[0], given[1] if len(given) > 1 else ""
    cfg = config_from(args, "inspect_trailer")
    out = Path(args.output or "reports/inspect")
    # lazy: matplotlib and PyAV load only once the arguments are known to be usable
    from featurize import qa
    from featurize import store
    is_store = store.settings_of(args.target) is not None
    if is_store and not args.trailer and args.sample <= 0:
        fail("give a TRAILER_ID of the store, or --sample N", USAGE)
    try:
        if is_store and args.sample > 0:
            files = qa.store_pictures(args.target, args.sample, out, cfg.featurize)
            print(json.dumps({"store": args.target, "files": [str(f) for f in files]}, indent=2))
            return 0
        path, fcfg = qa.source_of(args.target, args.trailer, cfg.featurize)
        name = args.trailer or Path(path).stem
        print(json.dumps(qa.inspect_trailer(path, fcfg, out, name), indent=2))
    except (qa.NotInStore, FileNotFoundError) as e:
        fail(str(e))
    except Exception as e:          # an unreadable video: say what, in one line
        fail(f"{args.target}: {type(e).__name__}: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

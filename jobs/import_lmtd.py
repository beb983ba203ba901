"""Import the public LMTD-9 release into a feature store that the training jobs accept.

    python jobs/import_lmtd.py --features lmtd9_resnet152.pickle --database database.db --output STORE

The pickle is loaded with a restricted unpickler (dicts, strings, numbers and NumPy
arrays only); anything else is refused. Entries with a wrong shape, no keyframes,
non-finite values or no labels go to STORE/_errors; a rerun skips what is done.
The store holds frames only: train ctt-a/b/c and lstm on it, and the random baseline.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jobs._common import fail, setup_logging  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--features", required=True, help="lmtd9_resnet152.pickle (local or s3://)")
    p.add_argument("--database", required=True, help="database.db, the release's SQLite labels (local)")
    p.add_argument("--output", required=True, help="feature store to write (local or s3://)")
    args = p.parse_args(argv)
    setup_logging()
    # lazy: the store's writers import torch (2 s); --help answers without it
    from featurize.lmtd import ForbiddenPickle, ReleaseError, import_release
    from featurize.store import StoreMismatch
    for path in (args.features, args.database):
        if "://" not in path and not os.path.exists(path):
            fail(f"{path} does not exist")
    try:
        summary = import_release(args.features, args.database, args.output)
    except (ForbiddenPickle, ReleaseError, StoreMismatch, EOFError, ValueError) as e:
        fail(f"{type(e).__name__}: {e}")
    print("import summary: " + json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Render synthetic trailers (H.264 + AAC) whose look and sound depend on their genres.

    python jobs/make_samples.py --out data/samples --n 150 --seed 0

Writes OUT/videos/*.mp4 and OUT/manifest.csv (trailer_id, path, genres, split).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--n", type=int, default=150, help="number of trailers")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0, help="processes (0: one per core)")
    p.add_argument("--width", type=int, default=192)
    p.add_argument("--height", type=int, default=108)
    p.add_argument("--fps", type=int, default=12)
    p.add_argument("--min-seconds", type=float, default=8.0)
    p.add_argument("--max-seconds", type=float, default=14.0)
    a = p.parse_args(argv)
    from featurize.sample_trailers import SampleSpec, make_samples  # lazy: PyAV and numba; --help answers without them
    spec = SampleSpec(width=a.width, height=a.height, fps=a.fps, min_seconds=a.min_seconds, max_seconds=a.max_seconds)
    t0 = time.time()
    df = make_samples(a.out, a.n, a.seed, spec, workers=a.workers or None)
    print(f"{len(df)} trailers in {a.out} ({time.time() - t0:.1f}s); splits: "
          + ", ".join(f"{k}={v}" for k, v in df["split"].value_counts().sort_index().items()))
    print(f"manifest: {os.path.join(a.out, 'manifest.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

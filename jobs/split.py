"""Give a manifest train / val / test splits, genres balanced and groups kept whole.

    python jobs/split.py --input manifest.csv --output split.csv [--group-column film] \\
        [--groups groups.parquet] [--fractions 0.7,0.1,0.2] [--seed 0] [--resplit]

Multi-label iterative stratification (Sechidis et al. 2011): every genre's share close to
the target in each split, the rarest genres first; the rows of one group (the cuts of one
film: `--group-column COL` of the manifest, or `--groups` a Parquet or CSV table with
columns trailer_id,group such as a near-duplicate finder writes) always land in one split.
Rows that already have a split keep it unless --resplit; a manifest whose splits divide a
group gets a warning naming the groups. Prints the genre counts per split.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jobs._common import fail  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, help="manifest (CSV or Parquet) with trailer_id, path, genres")
    p.add_argument("--output", required=True, help="the manifest with its split column written (CSV)")
    p.add_argument("--group-column", default="", help="manifest column naming each row's group")
    p.add_argument("--groups", default="", help="table trailer_id,group (Parquet or CSV)")
    p.add_argument("--fractions", default="0.7,0.1,0.2", help="train,val,test shares (default 0.7,0.1,0.2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resplit", action="store_true", help="split every row again, even those that have a split")
    a = p.parse_args(argv)
    try:
        fractions = [float(x) for x in a.fractions.split(",")]
        if len(fractions) != 3 or min(fractions) < 0 or sum(fractions) <= 0:
            raise ValueError
    except ValueError:
        fail(f"--fractions wants three shares train,val,test, got {a.fractions!r}", code=2)
    import pandas as pd  # lazy: --help answers without it

    from featurize.genres import GENRES, multi_hot  # lazy: --help answers without pandas
    from featurize.manifest import ManifestError, read_manifest  # lazy: --help answers without pandas
    from featurize.splits import SPLITS, divided_groups, split_manifest  # lazy: --help answers without numpy
    try:
        df = read_manifest(a.input)
    except ManifestError as e:
        fail(str(e), code=2)
    raw = pd.read_csv(a.input, dtype=str, keep_default_na=False) if a.input.endswith(".csv") else None
    if a.group_column:
        if raw is None or a.group_column not in raw.columns:
            fail(f"--group-column {a.group_column!r}: no such column in {a.input}", code=2)
        groups = raw[a.group_column].where(raw[a.group_column] != "", raw["trailer_id"]).tolist()
    elif a.groups:
        t = pd.read_parquet(a.groups) if a.groups.endswith(".parquet") else pd.read_csv(a.groups, dtype=str)
        if not {"trailer_id", "group"} <= set(t.columns):
            fail(f"--groups {a.groups}: wants columns trailer_id,group", code=2)
        by_id = dict(zip(t.trailer_id.astype(str), t.group.astype(str)))
        groups = [by_id.get(i, i) for i in df.trailer_id]
    else:
        groups = df.trailer_id.tolist()
    split, given = split_manifest(df.genres.tolist(), df.split.tolist(), groups, fractions, a.seed, a.resplit)
    if given:
        print(f"warning: the manifest's splits divide {len(given)} group(s): {', '.join(map(str, list(given)[:10]))}; "
              "--resplit places them whole", file=sys.stderr)
    out = raw.copy() if raw is not None else df.assign(genres=["|".join(g) for g in df.genres])
    out["split"] = split
    out.to_csv(a.output, index=False)
    counts = pd.DataFrame(multi_hot(df.genres), columns=list(GENRES)).groupby(pd.Series(split, name="split")).sum()
    counts = counts.astype(int)
    counts["trailers"] = pd.Series(split).value_counts()
    print(counts.reindex([s for s in SPLITS if s in counts.index]).to_string())
    divided = divided_groups(split, groups)
    print(f"{a.output}: {len(df)} trailers, {len(set(groups))} groups, {len(divided)} divided "
          f"({'kept from the input' if divided else 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

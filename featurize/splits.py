"""Train / val / test splits made for a catalogue: multi-label iterative stratification
(Sechidis, Tsoumakas and Vlahavas, 2011) with groups placed whole.

Sechidis et al. take the label with the fewest examples still unplaced, and give each of its
examples to the split that most lacks that label (then the one that most lacks examples),
so rare genres are balanced first. Here the unit placed is a group (the cuts of one film,
`jobs/split.py --group-column`), carrying the label counts of its members, so a group is
never divided across splits; singleton groups make it the paper's algorithm."""
from __future__ import annotations

from typing import Hashable, Sequence

import numpy as np

from featurize.genres import multi_hot

SPLITS = ("train", "val", "test")


def stratify(labels: np.ndarray, groups: Sequence[Hashable] | None = None,
             fractions: Sequence[float] = (0.7, 0.1, 0.2), seed: int = 0) -> np.ndarray:
    """(n, C) 0/1 labels (and a group per row) -> (n,) the split index of each row."""
    labels = np.asarray(labels, np.int64)
    n = len(labels)
    r = np.asarray(fractions, np.float64) / np.sum(fractions)
    rng = np.random.default_rng(seed)
    keys = list(groups) if groups is not None else list(range(n))
    index: dict[Hashable, list[int]] = {}
    for i, g in enumerate(keys):
        index.setdefault(g, []).append(i)
    members = list(index.values())
    counts = np.array([labels[m].sum(0) for m in members]) if members else np.zeros((0, labels.shape[1]))
    sizes = np.array([len(m) for m in members], np.float64)
    want = r * n                                         # rows each split still wants
    want_label = np.outer(r, labels.sum(0)).astype(np.float64)   # ... of each label
    left = np.ones(len(members), bool)
    out = np.zeros(n, np.int64)

    def place(u: int, s: int) -> None:
        out[members[u]] = s
        want[s] -= sizes[u]
        want_label[s] -= counts[u]
        left[u] = False

    while left.any():
        remaining = counts[left].sum(0)
        if not remaining.any():                          # only unlabelled units: by rows wanted
            for u in rng.permutation(np.flatnonzero(left)):
                place(u, int(_argmax_random(want, rng)))
            break
        c = int(_argmax_random(np.where(remaining > 0, -remaining, -np.inf), rng))   # the rarest label left
        for u in rng.permutation(np.flatnonzero(left & (counts[:, c] > 0))):
            best = want_label[:, c] == want_label[:, c].max()
            s = int(_argmax_random(np.where(best, want, -np.inf), rng))
            place(u, s)
    unit_split = np.array([out[m[0]] for m in members], np.int64)
    _refine(unit_split, counts, sizes, np.outer(r, labels.sum(0)), r * n, rng)
    for u, m in enumerate(members):
        out[m] = unit_split[u]
    return out


def _refine(split: np.ndarray, counts: np.ndarray, sizes: np.ndarray, target: np.ndarray,
            target_size: np.ndarray, rng: np.random.Generator, passes: int = 20) -> None:
    """Moves of a unit to another split, and swaps of two units between splits, that bring
    the genre counts nearer their targets (the squared gaps, summed; the split sizes weigh
    as one more genre), until none helps. The greedy pass leaves the common genres to
    chance: they follow the rare ones."""
    have = np.stack([counts[split == s].sum(0) for s in range(len(target))]).astype(np.float64)
    size = np.array([sizes[split == s].sum() for s in range(len(target))], np.float64)

    def cost(h: np.ndarray, z: np.ndarray) -> float:
        return float(((h - target) ** 2).sum() + ((z - target_size) ** 2).sum())

    for _ in range(passes):
        improved = False
        for u in rng.permutation(len(split)):
            a = split[u]
            for b in range(len(target)):              # a move
                if b == a:
                    continue
                h, z = have.copy(), size.copy()
                h[a] -= counts[u]
                h[b] += counts[u]
                z[a] -= sizes[u]
                z[b] += sizes[u]
                if cost(h, z) < cost(have, size) - 1e-9:
                    split[u], have, size, improved, a = b, h, z, True, b
            for v in np.flatnonzero(split != a):      # a swap
                b = split[v]
                d = counts[u] - counts[v]
                h = have.copy()
                h[a] -= d
                h[b] += d
                z = size.copy()
                z[a] -= sizes[u] - sizes[v]
                z[b] += sizes[u] - sizes[v]
                if cost(h, z) < cost(have, size) - 1e-9:
                    split[u], split[v], have, size, improved = b, a, h, z, True
                    break
        if not improved:
            return


def _argmax_random(x: np.ndarray, rng: np.random.Generator) -> int:
    top = np.flatnonzero(x == x.max())
    return int(top[0] if len(top) == 1 else rng.choice(top))


def divided_groups(splits: Sequence[str], groups: Sequence[Hashable]) -> dict[Hashable, list[str]]:
    """Groups whose rows lie in more than one split (their splits, sorted)."""
    seen: dict[Hashable, set[str]] = {}
    for s, g in zip(splits, groups):
        seen.setdefault(g, set()).add(s)
    return {g: sorted(v) for g, v in seen.items() if len(v) > 1}


def split_manifest(genres: Sequence[Sequence[str]], current: Sequence[str], groups: Sequence[Hashable],
                   fractions: Sequence[float], seed: int = 0, resplit: bool = False) -> tuple[list[str], dict]:
    """The split of every manifest row: rows that have one keep it (unless `resplit`), new rows
    of a group that has one join it, the rest are stratified by genre with their groups
    whole. Returns the splits and what the input already divided (group -> its splits)."""
    has = [s in SPLITS and not resplit for s in current]
    given = divided_groups([s for s, h in zip(current, has) if h], [g for g, h in zip(groups, has) if h])
    fixed = {g: s for g, s, h in zip(groups, current, has) if h}
    split = [s if h else fixed.get(g, "") for s, h, g in zip(current, has, groups)]
    free = [i for i, s in enumerate(split) if not s]
    if free:
        y = multi_hot([genres[i] for i in free])
        for i, k in zip(free, stratify(y, [groups[i] for i in free], fractions, seed)):
            split[i] = SPLITS[k]
    return split, given

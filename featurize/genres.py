"""The LMTD-9 label space: genre names in their fixed order and their multi-hot encoding."""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

GENRES: tuple[str, ...] = (
    "action", "adventure", "comedy", "crime", "drama", "horror", "romance", "scifi", "thriller",
)
NUM_GENRES = len(GENRES)

# LMTD-9 training split (paper, Table 2): genre counts over 2861 trailers, and how
# many trailers carry 1, 2 or 3 genres. Used to draw realistic synthetic labels and
# to check that random scores land near the paper's random baseline.
LMTD9_TRAIN_COUNTS: dict[str, int] = {
    "action": 611, "adventure": 432, "comedy": 1109, "crime": 477, "drama": 1437,
    "horror": 324, "romance": 468, "scifi": 229, "thriller": 502,
}
LMTD9_CARDINALITY_SHARE = (0.309, 0.4285, 0.2625)  # share of trailers with 1, 2, 3 genres
# LMTD-9 test split (Table 2): 772 trailers.
LMTD9_TEST_COUNTS: dict[str, int] = {
    "action": 164, "adventure": 108, "comedy": 301, "crime": 121, "drama": 394,
    "horror": 78, "romance": 122, "scifi": 57, "thriller": 129,
}
LMTD9_TEST_CARDINALITY_SHARE = (0.3247, 0.4398, 0.2346)


# Spellings users write for the nine names (compared lower-case, with spaces, hyphens and
# underscores removed): IMDb's and TMDb's genre names, and common short forms.
ALIASES: dict[str, str] = {
    "scifi": "scifi", "sciencefiction": "scifi", "sf": "scifi",
    "romantic": "romance", "thrillers": "thriller", "suspense": "thriller",
    "comedies": "comedy", "dramas": "drama", "crimes": "crime",
}


def genre_name(name: str) -> str | None:
    """A genre as written by a user (`Sci-Fi`, `Science Fiction`, ` Drama`) -> its name in
    GENRES, or None for one outside the label space."""
    key = "".join(ch for ch in str(name).lower() if ch.isalnum())
    return key if key in GENRES else ALIASES.get(key)


def parse_genres(value: str | Sequence[str] | None) -> list[str]:
    """Accept `a|b`, a list of names, or nothing, names in any case and common spellings
    (`ALIASES`); reject names outside the genre list, listing the valid ones."""
    if value is None:
        return []
    if isinstance(value, float) and np.isnan(value):  # pandas' missing value
        return []
    raw = value.split("|") if isinstance(value, str) else list(value)
    raw = [str(n).strip() for n in raw if n is not None and str(n).strip()]
    unknown = [n for n in raw if genre_name(n) is None]
    if unknown:
        raise ValueError(f"unknown genre(s) {unknown}; expected names from {', '.join(GENRES)} "
                         "(any case; sci-fi and science fiction are scifi), separated by |")
    return list(dict.fromkeys(genre_name(n) for n in raw))


def multi_hot(genres: Iterable[Sequence[str]]) -> np.ndarray:
    """(N,) lists of names -> (N, C) float32 0/1 matrix in GENRES order."""
    index = {g: i for i, g in enumerate(GENRES)}
    rows = list(genres)
    y = np.zeros((len(rows), NUM_GENRES), np.float32)
    for r, names in enumerate(rows):
        for name in names:
            y[r, index[name]] = 1.0
    return y


def sample_labels(rng: np.random.Generator, n: int,
                  counts: dict[str, int] = LMTD9_TRAIN_COUNTS,
                  cardinality: Sequence[float] = LMTD9_CARDINALITY_SHARE) -> list[list[str]]:
    """Draw n label sets with 1-3 genres, genre frequencies roughly as in `counts`."""
    p = np.array([counts[g] for g in GENRES], float)
    p /= p.sum()
    card = np.asarray(cardinality, float) / np.sum(cardinality)
    out = []
    for _ in range(n):
        k = int(rng.choice([1, 2, 3], p=card))
        idx = rng.choice(NUM_GENRES, size=k, replace=False, p=p)
        out.append([GENRES[i] for i in sorted(idx)])
    return out

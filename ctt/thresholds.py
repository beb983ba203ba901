"""Per-genre decision thresholds: the probability cut that maximises F1 on validation.

Predicted genres are those whose probability reaches their genre's threshold. A genre
with no positive validation trailer keeps the default 0.5.
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_recall_curve

from featurize.genres import GENRES

DEFAULT = 0.5


def best_f1_thresholds(y_true: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    out = {}
    for c, g in enumerate(GENRES):
        y = y_true[:, c] > 0.5
        if not y.any() or not len(y):
            out[g] = DEFAULT
            continue
        p, r, t = precision_recall_curve(y, probs[:, c])
        f1 = np.where(p[:-1] + r[:-1] > 0, 2 * p[:-1] * r[:-1] / np.maximum(p[:-1] + r[:-1], 1e-12), 0.0)
        out[g] = float(t[int(np.argmax(f1))])
    return out


def predicted_genres(probs: np.ndarray, thresholds: dict[str, float]) -> list[list[str]]:
    cut = np.array([thresholds.get(g, DEFAULT) for g in GENRES])
    return [[g for g, hit in zip(GENRES, row) if hit] for row in probs >= cut]

"""Multi-label evaluation measures of the paper (section 4.3), over NumPy arrays.

AU(PRC) is scikit-learn's `average_precision_score`; ranking loss is
`label_ranking_loss`. Genres with no positive example in `y_true` have no
defined AU(PRC): they are left out of the macro/weighted averages and reported as NaN.
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, label_ranking_loss

from featurize.genres import GENRES


def _check(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_true.shape != y_score.shape or y_true.ndim != 2:
        raise ValueError(f"y_true {y_true.shape} and y_score {y_score.shape} must be equal (N, C)")
    return (y_true > 0.5).astype(np.int64), y_score


def auprc(y_true: np.ndarray, y_score: np.ndarray, average: str = "micro") -> float:
    y_true, y_score = _check(y_true, y_score)
    if average == "micro":
        return float(average_precision_score(y_true, y_score, average="micro"))
    present = y_true.sum(0) > 0
    if not present.any():
        return float("nan")
    return float(average_precision_score(y_true[:, present], y_score[:, present], average=average))


def per_genre_auprc(y_true: np.ndarray, y_score: np.ndarray,
                    genres: tuple[str, ...] = GENRES) -> dict[str, float]:
    y_true, y_score = _check(y_true, y_score)
    out = {}
    for c, g in enumerate(genres):
        out[g] = (float(average_precision_score(y_true[:, c], y_score[:, c]))
                  if y_true[:, c].any() else float("nan"))
    return out


def ranking_loss(y_true: np.ndarray, y_score: np.ndarray) -> float:
    y_true, y_score = _check(y_true, y_score)
    return float(label_ranking_loss(y_true, y_score))


def evaluate(y_true: np.ndarray, y_score: np.ndarray, prefix: str = "") -> dict[str, float]:
    """All SPEC measures under their MLflow names, e.g. `test_auprc_micro`."""
    m = {
        "auprc_micro": auprc(y_true, y_score, "micro"),
        "auprc_macro": auprc(y_true, y_score, "macro"),
        "auprc_weighted": auprc(y_true, y_score, "weighted"),
        "ranking_loss": ranking_loss(y_true, y_score),
    }
    m.update({f"auprc_{g}": v for g, v in per_genre_auprc(y_true, y_score).items()})
    return {f"{prefix}{k}": v for k, v in m.items()}

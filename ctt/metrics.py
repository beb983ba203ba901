"""Multi-label evaluation measures over NumPy arrays: the paper's (section 4.3), and, beyond
the paper, decisions at a run's thresholds and calibration.

AU(PRC) is scikit-learn's `average_precision_score`; ranking loss is
`label_ranking_loss`. Genres with no positive example in `y_true` have no
defined AU(PRC): they are left out of the macro/weighted averages and reported as NaN.
Decisions (a genre is predicted when its probability reaches its threshold) are scored
with scikit-learn's precision, recall and F1 (micro, macro over genres, per genre, and
per trailer: `samples`) and subset accuracy. Calibration is the expected calibration
error: the mean |accuracy - confidence| over `ECE_BINS` equal-width probability bins,
weighted by the bin's share of (trailer, genre) pairs.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
from sklearn.metrics import accuracy_score, average_precision_score, label_ranking_loss, precision_recall_fscore_support

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


ECE_BINS = 10


def decide(y_score: np.ndarray, thresholds: Mapping[str, float] | np.ndarray | None,
           genres: tuple[str, ...] = GENRES) -> np.ndarray:
    """(N, C) 0/1 decisions: a genre is predicted when its probability reaches its threshold
    (0.5 for a genre without one)."""
    if thresholds is None:
        cut = np.full(len(genres), 0.5)
    elif isinstance(thresholds, np.ndarray):
        cut = thresholds
    else:
        cut = np.array([thresholds.get(g, 0.5) for g in genres], np.float64)
    return (np.asarray(y_score, np.float64) >= cut).astype(np.int64)


def decisions(y_true: np.ndarray, y_score: np.ndarray, thresholds=None,
              genres: tuple[str, ...] = GENRES) -> dict[str, float]:
    """Precision, recall and F1 of the decisions at `thresholds`: micro, macro (over genres
    with a positive trailer), per genre, F1 per trailer averaged (`f1_samples`), and the
    share of trailers whose genre set is exactly right (`subset_accuracy`)."""
    y_true, y_score = _check(y_true, y_score)
    pred = decide(y_score, thresholds, genres)
    out: dict[str, float] = {}
    present = y_true.sum(0) > 0
    for avg in ("micro", "macro"):
        cols = slice(None) if avg == "micro" else present
        if avg == "macro" and not present.any():
            p = r = f = float("nan")
        else:
            p, r, f, _ = precision_recall_fscore_support(y_true[:, cols], pred[:, cols], average=avg, zero_division=0)
        out |= {f"precision_{avg}": float(p), f"recall_{avg}": float(r), f"f1_{avg}": float(f)}
    p, r, f, _ = precision_recall_fscore_support(y_true, pred, average=None, zero_division=0)
    for c, g in enumerate(genres):
        ok = bool(present[c])
        out |= {f"precision_{g}": float(p[c]) if ok else float("nan"),
                f"recall_{g}": float(r[c]) if ok else float("nan"), f"f1_{g}": float(f[c]) if ok else float("nan")}
    out["f1_samples"] = float(precision_recall_fscore_support(y_true, pred, average="samples", zero_division=0)[2])
    out["subset_accuracy"] = float(accuracy_score(y_true, pred))
    return out


def calibration_bins(y_true: np.ndarray, y_score: np.ndarray, bins: int = ECE_BINS) -> tuple[np.ndarray, ...]:
    """Every (trailer, genre) probability in `bins` equal-width bins -> (count, mean
    probability, share of positives) per bin (NaN where a bin is empty). The last bin
    holds 1.0."""
    y = np.asarray(y_true, np.float64).ravel() > 0.5
    p = np.clip(np.asarray(y_score, np.float64).ravel(), 0.0, 1.0)
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    count = np.bincount(which, minlength=bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(which, weights=p, minlength=bins) / count
        acc = np.bincount(which, weights=y.astype(np.float64), minlength=bins) / count
    return count, conf, acc


def ece(y_true: np.ndarray, y_score: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error of the probabilities as per-genre binary forecasts."""
    count, conf, acc = calibration_bins(y_true, y_score, bins)
    if not count.sum():
        return float("nan")
    seen = count > 0
    return float(np.sum(count[seen] * np.abs(acc[seen] - conf[seen])) / count.sum())


def calibration(y_true: np.ndarray, y_score: np.ndarray, genres: tuple[str, ...] = GENRES) -> dict[str, float]:
    """`ece` over every (trailer, genre) pair and per genre."""
    y_true, y_score = _check(y_true, y_score)
    return {"ece": ece(y_true, y_score)} | {f"ece_{g}": ece(y_true[:, c], y_score[:, c]) for c, g in enumerate(genres)}


def evaluate(y_true: np.ndarray, y_score: np.ndarray, prefix: str = "",
             thresholds: Mapping[str, float] | None = None) -> dict[str, float]:
    """All measures under their MLflow names, e.g. `test_auprc_micro`, `test_f1_macro` (the
    decisions at `thresholds`, 0.5 where none is given), `test_ece`."""
    m = {
        "auprc_micro": auprc(y_true, y_score, "micro"),
        "auprc_macro": auprc(y_true, y_score, "macro"),
        "auprc_weighted": auprc(y_true, y_score, "weighted"),
        "ranking_loss": ranking_loss(y_true, y_score),
    }
    m.update({f"auprc_{g}": v for g, v in per_genre_auprc(y_true, y_score).items()})
    m.update(decisions(y_true, y_score, thresholds))
    m.update(calibration(y_true, y_score))
    return {f"{prefix}{k}": v for k, v in m.items()}

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


def weighted_ap(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Average precision of one score column under R weightings of its items at once: y, s (N,),
    w (R, N) -> (R,), NaN where a weighting leaves no positive. scikit-learn's formula with
    `sample_weight` (the sum over distinct thresholds of the recall step times the precision),
    vectorised over R so a bootstrap costs one sort per column instead of R calls."""
    order = np.argsort(-s, kind="mergesort")
    y, s, w = y[order].astype(np.float64), s[order], w[:, order].astype(np.float64)
    ends = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]         # the last item of each tie group
    tp, cnt = np.cumsum(w * y, axis=1)[:, ends], np.cumsum(w, axis=1)[:, ends]
    total = tp[:, -1:]
    precision = np.divide(tp, cnt, out=np.zeros_like(tp), where=cnt > 0)
    step = np.diff(tp, axis=1, prepend=0.0)
    ap = (step * precision).sum(1) / np.where(total[:, 0] > 0, total[:, 0], 1.0)
    return np.where(total[:, 0] > 0, ap, np.nan)


def bootstrap_difference(y_true: np.ndarray, a: np.ndarray, b: np.ndarray, average: str = "macro",
                         n: int = 2000, level: float = 0.9, seed: int = 0) -> tuple[float, float, float]:
    """AU(PRC) of scores `a` minus that of scores `b` on the same trailers, and the `level`
    percentile interval of that difference over `n` paired bootstrap resamples of the trailers
    (both scored on each resample). On a test split of a few dozen trailers a difference of a
    few points is noise; an interval that excludes 0 is not. `a` may stack several runs of one
    model, (S, N, C) (seeds): the difference is then their mean AU(PRC) minus b's, each
    resample shared by all S. -> (difference, low, high)."""
    runs = np.asarray(a, dtype=np.float64)
    runs = runs[None] if runs.ndim == 2 else runs
    y, b = _check(y_true, b)
    for r in runs:
        _check(y_true, r)
    N, C = y.shape
    rng = np.random.default_rng(seed)

    def ap(scores: np.ndarray, w: np.ndarray) -> np.ndarray:       # (R,) AU(PRC) under each weighting
        if average == "micro":
            return weighted_ap(y.ravel(), scores.ravel(), np.repeat(w, C, axis=1))
        per = np.stack([weighted_ap(y[:, c], scores[:, c], w) for c in range(C)], 1)
        out = np.full(len(w), np.nan)
        some = ~np.isnan(per).all(1)                  # a resample without a single positive: left out
        out[some] = np.nanmean(per[some], axis=1)
        return out

    diffs = []
    for start in range(0, n, 250):                   # bounded memory on large test splits
        w = rng.multinomial(N, np.full(N, 1.0 / N), size=min(250, n - start)).astype(np.float64)
        diffs.append(np.mean([ap(r, w) for r in runs], axis=0) - ap(b, w))
    d = np.concatenate(diffs)
    d = d[~np.isnan(d)]
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(d, [tail, 100 - tail])
    point = float(np.mean([auprc(y, r, average) for r in runs])) - auprc(y, b, average)
    return point, float(lo), float(hi)


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

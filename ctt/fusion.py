"""CTT-MMC-TN (two nets): a weighted average of a visual and an audio run's probabilities.

The visual weight w is chosen on validation from {1.0, 0.95, ..., 0.0}; trailers
with no audio prediction (no audio track) keep their visual probabilities. Beyond the
paper, `per_genre_weights` chooses a weight per genre, shrunk toward the global one
where a genre has few validation positives.
"""
from __future__ import annotations

import numpy as np

from ctt import metrics as M


def weight_grid(step: float = 0.05) -> np.ndarray:
    n = int(round(1.0 / step))
    return np.round(np.linspace(1.0, 0.0, n + 1), 6)


Split = tuple[list[str], np.ndarray, np.ndarray]      # trailer ids, labels (N, C), probabilities (N, C)


def align(visual: Split, audio: Split) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """-> (ids, labels, visual probs, audio probs) in the visual run's order; NaN audio rows
    where the audio run has no prediction."""
    ids, y, pv = visual
    index = {t: i for i, t in enumerate(audio[0])}
    pa = np.full_like(pv, np.nan, dtype=np.float64)
    for r, t in enumerate(ids):
        if t in index:
            pa[r] = audio[2][index[t]]
    return ids, y, pv, pa


def fuse(pv: np.ndarray, pa: np.ndarray, w) -> np.ndarray:
    """w: one visual weight, or (C,) weights, one per genre."""
    w = np.asarray(w, np.float64)
    fused = w * pv + (1.0 - w) * pa
    return np.where(np.isnan(pa), pv, fused)


def choose_weight(y: np.ndarray, pv: np.ndarray, pa: np.ndarray, grid: np.ndarray,
                  average: str = "micro") -> tuple[float, dict[float, float]]:
    """The grid weight with the best validation AU(PRC); ties go to the larger visual weight."""
    scores = {float(w): M.auprc(y, fuse(pv, pa, w), average) for w in grid}
    best = max(scores, key=lambda w: (scores[w], w))
    return best, scores


def per_genre_weights(y: np.ndarray, pv: np.ndarray, pa: np.ndarray, grid: np.ndarray, global_w: float,
                      shrink: float) -> np.ndarray:
    """(C,) visual weights: per genre the grid weight with the best validation AU(PRC) of that
    genre (ties to the larger weight), shrunk toward `global_w` as (n w_g + k w) / (n + k),
    n the genre's validation positives with an audio prediction, k = `shrink`. A genre
    without such positives keeps the global weight."""
    has_audio = ~np.isnan(pa).any(axis=1)
    out = np.full(y.shape[1], float(global_w))
    for c in range(y.shape[1]):
        yc = y[has_audio, c] > 0.5
        n = int(yc.sum())
        if not n or n == len(yc):
            continue
        scores = {float(w): M.auprc(yc[:, None], fuse(pv[has_audio, c:c + 1], pa[has_audio, c:c + 1], w))
                  for w in grid}
        best = max(scores, key=lambda w: (scores[w], w))
        out[c] = (n * best + shrink * global_w) / (n + shrink)
    return np.round(out, 6)


def fit_weights(y: np.ndarray, pv: np.ndarray, pa: np.ndarray, step: float = 0.05, per_genre: bool = False,
                shrink: float = 0.0) -> tuple[float | list[float], float, dict[float, float]]:
    """The fused model's weights from validation: (w, the global weight, validation AU(PRC)
    micro by global weight); w is the global weight, or with `per_genre` one per genre."""
    grid = weight_grid(step)
    w_global, scores = choose_weight(y, pv, pa, grid)
    w = per_genre_weights(y, pv, pa, grid, w_global, shrink).tolist() if per_genre else w_global
    return w, w_global, scores

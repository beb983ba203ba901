"""The project's figures, one function each: precision-recall curves per genre (the
paper's Figure 6; a run's own PR plot is the same figure with one method), genre
probability bars per trailer (Figure 7; also predict's charts), reliability diagrams
(calibration, beyond the paper). What featurize saw is drawn by `featurize.figures`."""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve

from ctt.metrics import calibration_bins, ece
from featurize.figures import DARK, LIGHT, plt, save  # noqa: F401  (Agg backend chosen there; `save` for callers)
from featurize.genres import GENRES


def pr_figure(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str):
    """label -> (labels (N, C), probabilities (N, C)): one panel per genre, one
    precision-recall curve per label, its AU(PRC) in the legend."""
    fig, axes = plt.subplots(3, 3, figsize=(13, 12), sharex=True, sharey=True)
    for c, (g, ax) in enumerate(zip(GENRES, axes.ravel())):
        ax.set(title=g, xlim=(0, 1), ylim=(0, 1.02))
        drawn = False
        for label, (y, probs) in curves.items():
            if not len(y) or not y[:, c].any():
                continue
            p, rec, _ = precision_recall_curve(y[:, c], probs[:, c])
            ax.plot(rec, p, lw=1.3, label=f"{label} ({average_precision_score(y[:, c], probs[:, c]):.2f})")
            drawn = True
        if drawn:                        # below the curves, which run from the top left
            ax.legend(fontsize=7, loc="lower left", framealpha=0.85)
        else:
            ax.text(0.5, 0.5, "no positive trailer", ha="center", va="center", color="grey")
    for ax in axes[-1]:
        ax.set_xlabel("recall")
    for ax in axes[:, 0]:
        ax.set_ylabel("precision")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def probability_bars(ids: Sequence[str], probs: np.ndarray, dark: np.ndarray, thresholds: np.ndarray,
                     title: str, cols: int = 3):
    """Horizontal bars of the genre probabilities of each trailer: `dark` (N, C) marks the
    genres drawn dark (true or predicted), `thresholds` (C,) the decision cut per genre."""
    cols = max(1, min(cols, len(ids)))
    nrows = max(1, math.ceil(len(ids) / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.2 * nrows), squeeze=False)
    for ax in axes.ravel()[len(ids):]:
        ax.axis("off")
    rows = range(len(GENRES))
    for ax, i in zip(axes.ravel(), range(len(ids))):
        ax.barh(rows, probs[i], color=[DARK if dark[i, c] else LIGHT for c in rows])
        ax.scatter(thresholds, rows, marker="|", color="k", s=120)
        ax.set_yticks(rows, GENRES, fontsize=8)
        ax.invert_yaxis()
        ax.set(xlim=(0, 1), title=str(ids[i]))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def reliability_figure(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str, bins: int = 10):
    """label -> (labels (N, C), probabilities (N, C)): the share of positives against the mean
    probability in each of `bins` equal-width bins, over every (trailer, genre) pair, one
    line per label (its ECE in the legend), with the diagonal of perfect calibration; below,
    how many pairs fall in each bin."""
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(9.5, 7.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfectly calibrated")
    width = 1.0 / bins / max(1, len(curves))
    for k, (label, (y, probs)) in enumerate(curves.items()):
        if not len(y):
            continue
        count, conf, acc = calibration_bins(y, probs, bins)
        seen = count > 0
        ax.plot(conf[seen], acc[seen], marker="o", lw=1.3, label=f"{label} (ECE {ece(y, probs, bins):.3f})")
        hist.bar(np.arange(bins) / bins + k * width, count, width=width, align="edge", label=label)
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel="share of positives", title=title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)   # beside, not over, the lines
    hist.set(xlabel="predicted probability", ylabel="pairs")
    fig.tight_layout()
    return fig

"""The project's figures, one function each: precision-recall curves per genre (the
paper's Figure 6; a run's own PR plot is the same figure with one method), genre
probability bars per trailer (Figure 7; also predict's charts), reliability diagrams
(calibration, beyond the paper), and what featurize saw: a contact sheet of keyframes, the
shot detector's similarity curve, and a store's distributions."""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")          # files only, on machines without a display (before pyplot)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import average_precision_score, precision_recall_curve  # noqa: E402

from ctt.metrics import calibration_bins, ece  # noqa: E402
from featurize.genres import GENRES  # noqa: E402

DARK, LIGHT = "#1f5fa8", "#b8c7d9"


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
        if drawn:
            ax.legend(fontsize=7, loc="upper right")
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
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(6, 7.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
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
    ax.legend(fontsize=8, loc="upper left")
    hist.set(xlabel="predicted probability", ylabel="pairs")
    fig.tight_layout()
    return fig


def contact_sheet(images: np.ndarray, times: Sequence[float], title: str, cols: int = 6,
                  labels: Sequence[str] | None = None):
    """(t, S, S, 3) uint8 keyframes in a grid, each with its time (and label)."""
    n = max(1, len(images))
    cols = max(1, min(cols, n))
    nrows = math.ceil(n / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(2.2 * cols, 2.4 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, (ax, img) in enumerate(zip(axes.ravel(), images)):
        ax.imshow(img)
        ax.set_title(f"{times[i]:.1f} s" + (f"  {labels[i]}" if labels else ""), fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def shot_curve(similarity: np.ndarray, cuts: Sequence[int], threshold: float, fps: float,
               keyframes: Sequence[float] = (), title: str = "", label: str = "smoothed HSV similarity"):
    """The smoothed histogram similarity of consecutive frames over time (or 1 - a learned
    detector's transition probability, `label`), the threshold below which a dip can be a
    cut, the cuts found (red) and the keyframe times (ticks)."""
    rate = fps if fps > 0 else 1.0
    t = np.arange(len(similarity)) / rate
    fig, ax = plt.subplots(figsize=(11, 3.2))
    ax.plot(t, similarity, lw=1, color=DARK, label=label)
    ax.axhline(threshold, color="grey", ls="--", lw=1, label=f"threshold {threshold:g}")
    for k, c in enumerate(cuts):
        ax.axvline(c / rate, color="#c0392b", lw=0.8, alpha=0.8, label="cut" if k == 0 else None)
    if len(keyframes):
        ax.plot(keyframes, np.full(len(keyframes), 1.02), "|", color="k", ms=10, label="keyframes")
    ax.set(xlabel="seconds" if fps > 0 else "frame", ylabel="similarity", ylim=(0, 1.06),
           xlim=(0, max(t[-1] if len(t) else 1.0, 1e-3)), title=title)
    ax.legend(fontsize=7, loc="lower left", ncol=4)
    fig.tight_layout()
    return fig


def store_histograms(keyframes: np.ndarray, shot_lengths: np.ndarray, durations: np.ndarray,
                     failures: Mapping[str, int], title: str):
    """A store at a glance: keyframes per trailer, shot lengths, durations, failures by reason."""
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
    for ax, values, name in ((axes[0], keyframes, "keyframes per trailer"), (axes[1], shot_lengths, "shot length (s)"),
                             (axes[2], durations, "duration (s)")):
        if len(values):
            ax.hist(values, bins=min(30, max(5, len(values) // 3)), color=DARK)
        ax.set(title=name, ylabel="count")
    reasons = sorted(failures.items(), key=lambda kv: -kv[1])
    axes[3].barh([r for r, _ in reasons], [n for _, n in reasons], color="#c0392b")
    axes[3].set(title="failures by reason" if reasons else "no failures")
    axes[3].invert_yaxis()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def save(fig, path) -> None:
    fig.savefig(path, dpi=110)
    plt.close(fig)

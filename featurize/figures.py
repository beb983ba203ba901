"""Figures of what featurize saw: a contact sheet of keyframes, the shot detector's curve
with its cuts, and a store's distributions; and the one `save` every figure goes through."""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")          # files only, on machines without a display (before pyplot)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DARK, LIGHT = "#1f5fa8", "#b8c7d9"


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
               keyframes: Sequence[float] = (), title: str = "", label: str = "HSV similarity to the frame before",
               first: int = 1):
    """What the cut test reads, per frame from the second (`featurize.shots.ShotTracker.similarity`;
    or 1 - a learned detector's transition probability from the first, `label`; `first` is
    the frame the curve's first value belongs to), the line
    below which a frame is a cut whatever its context, the boundaries found (red) and the
    keyframe times (ticks)."""
    rate = fps if fps > 0 else 1.0
    t = (np.arange(len(similarity)) + first) / rate
    fig, ax = plt.subplots(figsize=(11, 3.2))
    ax.plot(t, similarity, lw=1, color=DARK, label=label)
    ax.axhline(threshold, color="grey", ls="--", lw=1, label=f"threshold {threshold:g}")
    for k, c in enumerate(cuts):
        ax.axvline(c / rate, color="#c0392b", lw=0.8, alpha=0.8, label="boundary" if k == 0 else None)
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

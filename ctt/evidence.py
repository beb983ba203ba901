"""Which shots (or 3-s audio windows) made a genre call: gradient x input attributions.

For every genre c and every input step t (a keyframe, or a drawn spectrogram window),
a_tc = sum over the step's features of x * d logit_c / d x. The CTT models are piecewise
linear in their input (convolution, max over time, ReLU or Maxout, linear layers, batch
norm in eval mode), so these terms add up exactly to the logit less its bias terms: the
max over time routes each filter's contribution to the window where it fired, and within
it to the keyframes by their share of the filter's response. For the LSTM (and for the
log1p option of CTT-MMC-S) it is the usual first-order approximation.

Evidence for a genre: the steps with positive attribution, as shares of their sum,
strongest first.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from featurize.audio import WINDOW_S


def input_attributions(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> np.ndarray:
    """(B, T, C) attributions per keyframe for (B, T, m) inputs, or (B, p, C) per drawn part
    for spectrogram inputs (B, p, 130, 513)."""
    model.eval()
    x = batch["x"].float().clone().requires_grad_(True)
    logits = model(x, batch["lengths"])
    sum_dims = tuple(range(2, x.dim()))
    out = []
    for c in range(logits.shape[1]):
        (g,) = torch.autograd.grad(logits[:, c].sum(), x, retain_graph=c + 1 < logits.shape[1])
        out.append((g * x).sum(dim=sum_dims).detach())
    return torch.stack(out, dim=-1).numpy()


def top_evidence(attr: np.ndarray, times: np.ndarray, key: str, k: int = 3,
                 weight: float = 1.0) -> list[dict[str, Any]]:
    """(steps,) attributions of one genre -> up to k {"time_s", key, "share"} entries (share of
    the positive attribution, times `weight`: a fused member's weight), strongest first;
    `key` numbers the steps from 1 (shot 1 is the first keyframe)."""
    pos = np.maximum(np.nan_to_num(np.asarray(attr, np.float64)), 0.0)
    total = pos.sum()
    if total <= 0:
        return []
    order = np.argsort(-pos, kind="stable")[:k]
    return [{"time_s": round(float(times[i]), 3), key: int(i) + 1, "share": round(float(weight * pos[i] / total), 4)}
            for i in order if pos[i] > 0]


def window_times(n: int) -> np.ndarray:
    """Start time of each 3-s spectrogram window."""
    return np.arange(n) * WINDOW_S

"""The CTT module and the Maxout layer (paper section 3.1, 3.2)."""
from __future__ import annotations

import torch
from torch import nn


class CTT(nn.Module):
    """Convolution through time, then max-pooling over all of time.

        X (l x m) --[n filters f x m, stride 1, no padding]--> n x (l - f + 1) --[max over time]--> n

    Batches hold sequences of different lengths, zero-padded to a common T. Only
    outputs whose window lies inside the real sequence take part in the max, so a
    trailer's representation does not depend on what it was batched with. A
    sequence shorter than f (l < f) keeps the single window at position 0 over
    its zero-padded frames, the natural extension of "no padding" to l < f.

    Args:
        m: feature length per time step (2048 for ResNet-152 keyframes, 513 for spectrograms).
        n: number of filters (output size).
        f: receptive field in time steps.
    """

    def __init__(self, m: int, n: int = 256, f: int = 3):
        super().__init__()
        self.m, self.n, self.f = m, n, f
        self.conv = nn.Conv1d(m, n, kernel_size=f)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, T, m); lengths: (B,) valid steps per sequence
        B, T, _ = x.shape
        if T < self.f:
            x = nn.functional.pad(x, (0, 0, 0, self.f - T))
            T = self.f
        h = self.conv(x.transpose(1, 2))                     # (B, n, T - f + 1)
        if lengths is not None:
            valid = (lengths.to(h.device) - self.f + 1).clamp(min=1)              # (B,)
            pos = torch.arange(h.shape[-1], device=h.device)
            h = h.masked_fill(pos[None, None, :] >= valid[:, None, None], float("-inf"))
        return h.amax(dim=-1)                                # (B, n)


class Maxout(nn.Module):
    """max(Theta_1^T x, Theta_2^T x): two affine maps, element-wise max (Goodfellow et al.)."""

    def __init__(self, in_features: int, out_features: int, pieces: int = 2):
        super().__init__()
        self.out_features, self.pieces = out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.linear(x).view(*x.shape[:-1], self.pieces, self.out_features)   # (B, k, out)
        return z.amax(dim=-2)                                                    # (B, out)


class Standardize(nn.Module):
    """z-scores each feature dimension with train-set statistics (`model.standardize`, beyond
    the paper). Frozen features can differ in scale by orders of magnitude between dimensions
    (a random-init or a foreign backbone); the statistics are buffers, so they travel with the
    weights and serving normalises as training did. Padded steps stay 0."""

    def __init__(self, m: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(m))
        self.register_buffer("std", torch.ones(m))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        z = (x.float() - self.mean) / self.std
        if lengths is not None:
            z = z * (torch.arange(x.shape[1], device=x.device)[None, :, None] < lengths.to(x.device)[:, None, None])
        return z

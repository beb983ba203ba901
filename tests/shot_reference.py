"""The shot rule (`featurize.shots.ShotRule`) written plainly over a whole video's histograms
at once, as the reference the streamed `ShotTracker` must equal."""
from __future__ import annotations

import numpy as np

from featurize.shots import BLACK_FRAME, ShotRule


def _change(x: np.ndarray, a: int, b: int) -> float:
    n = len(x)
    d = 1.0 - np.minimum(x[min(max(a, 0), n - 1)], x[min(max(b, 0), n - 1)]).sum(-1, dtype=np.float64)
    return float(np.mean(d))


def boundaries(hists: np.ndarray, rule: ShotRule, regions: np.ndarray | None = None,
               dark: np.ndarray | None = None) -> list[int]:
    n, f = len(hists), rule.flash_frames
    cands = []
    scales = [(hists, 1, rule.cut_ratio, rule.min_change, rule.hard_change)]
    if regions is not None and rule.region_grid > 1:
        scales.append((regions, 1, rule.region_ratio, rule.region_change, np.inf))
    scales += [(hists, s, rule.gradual_ratio, rule.gradual_change, np.inf) for s in rule.spans]
    for x, s, ratio, least, hard in scales:
        cross, context = np.zeros(n), np.zeros(n)
        for c in range(1, n):
            if c - s >= 0:
                cross[c] = min(_change(x, c - s - o1, c + s - 1 + o2) for o1 in (0, f) for o2 in (0, f))
            if s == 1:
                near = [c + j for j in range(-rule.context, rule.context + 1) if j and 1 <= c + j <= n - 1]
                context[c] = np.mean([_change(x, j - 1, j) for j in near]) if near else 0.0
            else:
                d = 2 * s - 1
                left = min(_change(x, c - s - o - d, c - s - o) for o in (0, f))
                right = min(_change(x, c + s - 1 + o, c + s - 1 + o + d) for o in (0, f))
                context[c] = max(left, right)
        con = cross - context
        half = max(s, f)
        for c in range(1, n):
            if con[c] < con[max(1, c - half):min(n, c + half + 1)].max():
                continue
            if not (cross[c] >= hard or (cross[c] >= least and cross[c] >= ratio * context[c])):
                continue
            at = c
            if s > 1:                    # the first frame nearer the later compared frame
                at = next((m for m in range(c - s + 1, c + s)
                           if _change(hists, c - s, m) >= _change(hists, m, c + s - 1)), c - s + 1)
            cands.append((con[c] + (10.0 if s == 1 else 0.0), at, s))
    kept: list[tuple[int, int]] = []
    for _, at, s in sorted(cands, reverse=True):
        if all(abs(at - k) > max(rule.min_gap, s + ks) for k, ks in kept):
            kept.append((at, s))
    out, prev = [], 0
    for b in sorted(k for k, _ in kept):            # the black between a fade out and a fade in joins the next shot
        if dark is not None and rule.black_share > 0 and 0 < b - prev <= rule.black_gap and \
                np.mean(dark[prev:b]) >= rule.black_share and np.max(dark[prev:b]) >= BLACK_FRAME:
            continue
        out.append(b)
        prev = b
    return out

"""Plain-text tables of test metrics for a terminal: the one printer every job uses."""
from __future__ import annotations

import math
from typing import Mapping, Sequence

from ctt.paper import TABLE3_MEASURES as MEASURES


def fmt(v: float | None) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def metrics_table(rows: Sequence[tuple[str, Mapping[str, float]]],
                  paper: Mapping[str, Sequence[float]] | None = None,
                  labels: Mapping[str, str] | None = None) -> str:
    """(method, {'test_auprc_micro': ...}) rows -> Table 3 as text, methods shown by their
    `labels`; with `paper`, the paper's number for that method in brackets beside each."""
    width = 22 if paper else 16
    lines = [f"{'method':<14}" + "".join(f"{m:>{width}}" for m in MEASURES)]
    for name, metrics in rows:
        ref = (paper or {}).get(name)
        cells = [fmt(metrics.get("test_" + m)) + (f" ({ref[i]:.3f})" if ref else "") for i, m in enumerate(MEASURES)]
        lines.append(f"{(labels or {}).get(name, name):<14}" + "".join(f"{c:>{width}}" for c in cells))
    return "\n".join(lines)


def spread_table(rows: Sequence[tuple[str, Mapping[str, float]]], n: Mapping[str, int] | None = None) -> str:
    """(method, {'test_auprc_micro_mean': ..., 'test_auprc_micro_std': ...}) rows -> Table 3 as
    mean ± std over seeds."""
    lines = [f"{'method':<14}{'seeds':>6}" + "".join(f"{m:>20}" for m in MEASURES)]
    for name, stats in rows:
        cells = [f"{fmt(stats.get(f'test_{m}_mean'))} ± {fmt(stats.get(f'test_{m}_std'))}" for m in MEASURES]
        lines.append(f"{name:<14}{(n or {}).get(name, ''):>6}" + "".join(f"{c:>20}" for c in cells))
    return "\n".join(lines)

"""The comparison of an experiment's runs: Table 3 and Table 4 beside the paper's, the
precision-recall curves of every method per genre (Figure 6), and per-trailer genre
probabilities (Figure 7), as Markdown + PNG.

`collect` reads MLflow (through `ctt.tracking`); everything else works on plain dicts and arrays.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ctt import plots, tracking
from ctt.paper import METHOD_LABEL, METHOD_ORDER, TABLE3, TABLE3_MEASURES, TABLE4
from ctt.tables import fmt as _fmt
from ctt.tables import metrics_table
from ctt.thresholds import DEFAULT
from featurize.genres import GENRES


@dataclass
class MethodResult:
    method: str
    run_id: str
    metrics: dict[str, float]
    ids: list[str]
    y: np.ndarray
    probs: np.ndarray
    params: dict[str, str]


def _order(methods) -> list[str]:
    known = [m for m in METHOD_ORDER if m in methods]
    return known + sorted(m for m in methods if m not in METHOD_ORDER)


def table3(results: dict[str, MethodResult]) -> str:
    head = "| method | run | " + " | ".join(f"{m} | paper" for m in TABLE3_MEASURES) + " |"
    lines = [head, "|" + "---|" * (2 + 2 * len(TABLE3_MEASURES))]
    for m in _order(results):
        r = results[m]
        paper = TABLE3.get(m, (None,) * 4)
        cells = " | ".join(f"{_fmt(r.metrics.get('test_' + k))} | {_fmt(p)}" for k, p in zip(TABLE3_MEASURES, paper))
        lines.append(f"| {METHOD_LABEL.get(m, m)} | `{r.run_id[:8]}` | {cells} |")
    return "\n".join(lines)


def table4(results: dict[str, MethodResult]) -> str:
    methods = _order(results)
    lines = ["| genre | " + " | ".join(f"{METHOD_LABEL.get(m, m)} | paper" for m in methods) + " |",
             "|" + "---|" * (1 + 2 * len(methods))]
    for c, g in enumerate(GENRES):
        cells = " | ".join(f"{_fmt(results[m].metrics.get('test_auprc_' + g))} | "
                           f"{_fmt(TABLE4[m][c]) if m in TABLE4 else '—'}" for m in methods)
        lines.append(f"| {g} | {cells} |")
    return "\n".join(lines)


def text_table(results: dict[str, MethodResult]) -> str:
    """Table 3 for a terminal: this run's numbers, the paper's in brackets."""
    return metrics_table([(m, results[m].metrics) for m in _order(results)], TABLE3, METHOD_LABEL)


def pick_trailers(r: MethodResult, k: int = 6) -> list[int]:
    """A few test trailers to show: the most and least confident correct ones, spread out."""
    if not len(r.ids):
        return []
    hit = (r.probs * r.y).sum(1) / np.maximum(r.y.sum(1), 1)
    order = np.argsort(-hit, kind="stable")
    return sorted(set(order[np.linspace(0, len(order) - 1, min(k, len(order))).astype(int)].tolist()))


def render(results: dict[str, MethodResult], out_dir: Path, experiment: str, trailers: int = 6) -> dict[str, Path]:
    """Write report.md, pr_curves.png and predictions.png into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"markdown": out_dir / "report.md", "pr_curves": out_dir / "pr_curves.png",
             "predictions": out_dir / "predictions.png"}
    plots.save(plots.pr_figure({METHOD_LABEL.get(m, m): (results[m].y, results[m].probs) for m in _order(results)},
                               "Precision-recall per genre on the test split"), files["pr_curves"])
    shown = next((m for m in ("ctt-tn", "ctt-c", "ctt-a", "ctt-b") if m in results), _order(results)[-1])
    r, rows = results[shown], pick_trailers(results[shown], trailers)
    plots.save(plots.probability_bars([r.ids[i] for i in rows], r.probs[rows], r.y[rows] > 0.5,
                                      np.full(len(GENRES), DEFAULT),
                                      f"{METHOD_LABEL.get(shown, shown)}: predicted probabilities (dark: true genres)"),
               files["predictions"])
    n_test = {m: len(r.ids) for m, r in results.items()}
    md = [f"# CTT-MMC report: experiment `{experiment}`", "",
          "Test-split results of the latest finished run of each method. The paper's numbers "
          "(LMTD-9, 772 test trailers) are beside them for reference; they are comparable only "
          "for runs on LMTD-9 features.", "",
          "## Table 3: AU(PRC) (higher is better) and ranking loss (lower is better)", "", table3(results), "",
          "## Table 4: AU(PRC) per genre", "", table4(results), "",
          "Test trailers per method: " + ", ".join(f"{METHOD_LABEL.get(m, m)} {n}" for m, n in n_test.items())
          + " (audio models score only trailers with audio).", "",
          "## Precision-recall curves (Figure 6)", "", "![pr curves](pr_curves.png)", "",
          f"## Predicted probabilities for a few test trailers (Figure 7, {METHOD_LABEL.get(shown, shown)})", "",
          "![predictions](predictions.png)", ""]
    files["markdown"].write_text("\n".join(md))
    return files


def collect(experiment: str) -> dict[str, MethodResult]:
    """The latest finished run per method (tag `method`) of an MLflow experiment."""
    results: dict[str, MethodResult] = {}
    for run in tracking.find_runs(experiment):
        method = run.tags.get("method")
        if not method or method in results or run.tags.get("kind") == "report":
            continue
        if "test_auprc_micro" not in run.metrics:
            continue
        try:
            ids, y, probs = tracking.read_predictions(run.run_id, "test")
        except FileNotFoundError:
            continue
        results[method] = MethodResult(method, run.run_id, run.metrics, ids, y, probs, run.params)
    if not results:
        raise LookupError(f"experiment {experiment!r} has no finished runs with test metrics")
    return results


def run_report(experiment: str, out_dir: Path, trailers: int = 6) -> dict[str, Any]:
    """Collect, render, and log the report as its own MLflow run (tag kind=report)."""
    results = collect(experiment)
    files = render(results, out_dir, experiment, trailers)
    with tracking.open_run(experiment, "report", {"kind": "report"}) as run_id:
        tracking.log_params(run_id, {f"run.{m}": r.run_id for m, r in results.items()})
        tracking.log_files(run_id, list(files.values()), "report")
    return {"run_id": run_id, "files": {k: str(v) for k, v in files.items()},
            "methods": list(_order(results)), "table": text_table(results)}

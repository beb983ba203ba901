"""The comparison of an experiment's runs: Table 3 and Table 4 beside the paper's, the
precision-recall curves of every method per genre (Figure 6), and per-trailer genre
probabilities (Figure 7), as Markdown + PNG.

`collect` reads MLflow; everything else works on plain dicts and arrays.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ctt.genres import GENRES
from ctt.paper import METHOD_LABEL, METHOD_ORDER, TABLE3, TABLE3_MEASURES, TABLE4


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


def _fmt(v: float | None) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


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
    lines = [f"{'method':<12}" + "".join(f"{m:>22}" for m in TABLE3_MEASURES)]
    for m in _order(results):
        paper = TABLE3.get(m)
        cells = ""
        for i, k in enumerate(TABLE3_MEASURES):
            cell = _fmt(results[m].metrics.get("test_" + k)) + (f" ({paper[i]:.3f})" if paper else "")
            cells += f"{cell:>22}"
        lines.append(f"{METHOD_LABEL.get(m, m):<12}{cells}")
    return "\n".join(lines)


def pr_figure(results: dict[str, MethodResult]):
    """Figure 6: one panel per genre, one precision-recall curve per method."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import average_precision_score, precision_recall_curve
    fig, axes = plt.subplots(3, 3, figsize=(13, 12), sharex=True, sharey=True)
    for c, (g, ax) in enumerate(zip(GENRES, axes.ravel())):
        ax.set(title=g, xlim=(0, 1), ylim=(0, 1.02))
        if not any(len(r.y) and r.y[:, c].any() for r in results.values()):
            ax.text(0.5, 0.5, "no positive test trailer", ha="center", va="center", color="grey")
            continue
        for m in _order(results):
            r = results[m]
            if not len(r.y) or not r.y[:, c].any():
                continue
            p, rec, _ = precision_recall_curve(r.y[:, c], r.probs[:, c])
            ap = average_precision_score(r.y[:, c], r.probs[:, c])
            ax.plot(rec, p, lw=1.3, label=f"{METHOD_LABEL.get(m, m)} ({ap:.2f})")
        ax.legend(fontsize=7, loc="upper right")
    for ax in axes[-1]:
        ax.set_xlabel("recall")
    for ax in axes[:, 0]:
        ax.set_ylabel("precision")
    fig.suptitle("Precision-recall per genre on the test split")
    fig.tight_layout()
    return fig


def pick_trailers(r: MethodResult, k: int = 6) -> list[int]:
    """A few test trailers to show: the most and least confident correct ones, spread out."""
    if not len(r.ids):
        return []
    hit = (r.probs * r.y).sum(1) / np.maximum(r.y.sum(1), 1)
    order = np.argsort(-hit, kind="stable")
    return sorted(set(order[np.linspace(0, len(order) - 1, min(k, len(order))).astype(int)].tolist()))


def probabilities_figure(r: MethodResult, rows: list[int], threshold: float = 0.5):
    """Figure 7: horizontal bars of the genre probabilities of a few trailers; true genres dark."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cols = 3
    nrows = max(1, math.ceil(len(rows) / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.2 * nrows), squeeze=False)
    for ax in axes.ravel()[len(rows):]:
        ax.axis("off")
    for ax, i in zip(axes.ravel(), rows):
        colors = ["#1f5fa8" if r.y[i, c] else "#b8c7d9" for c in range(len(GENRES))]
        ax.barh(range(len(GENRES)), r.probs[i], color=colors)
        ax.axvline(threshold, color="grey", lw=0.8, ls=":")
        ax.set_yticks(range(len(GENRES)), GENRES, fontsize=8)
        ax.invert_yaxis()
        ax.set(xlim=(0, 1), title=f"{r.ids[i]}")
    fig.suptitle(f"{METHOD_LABEL.get(r.method, r.method)}: predicted probabilities (dark: true genres)")
    fig.tight_layout()
    return fig


def render(results: dict[str, MethodResult], out_dir: Path, experiment: str, trailers: int = 6) -> dict[str, Path]:
    """Write report.md, pr_curves.png and predictions.png into out_dir."""
    import matplotlib.pyplot as plt
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"markdown": out_dir / "report.md", "pr_curves": out_dir / "pr_curves.png",
             "predictions": out_dir / "predictions.png"}
    fig = pr_figure(results)
    fig.savefig(files["pr_curves"], dpi=110)
    plt.close(fig)
    shown = next((m for m in ("ctt-tn", "ctt-c", "ctt-a", "ctt-b") if m in results), _order(results)[-1])
    fig = probabilities_figure(results[shown], pick_trailers(results[shown], trailers))
    fig.savefig(files["predictions"], dpi=110)
    plt.close(fig)
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
    import mlflow

    from ctt import tracking
    tracking.probe(tracking.tracking_uri())
    client = mlflow.MlflowClient(tracking.tracking_uri())
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise LookupError(f"no MLflow experiment named {experiment!r} at {tracking.tracking_uri()}")
    runs = client.search_runs([exp.experiment_id], "attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"], max_results=1000)
    results: dict[str, MethodResult] = {}
    for run in runs:
        method = run.data.tags.get("method")
        if not method or method in results or run.data.tags.get("kind") == "report":
            continue
        if "test_auprc_micro" not in run.data.metrics:
            continue
        try:
            ids, y, probs = tracking.read_predictions(run.info.run_id, "test")
        except FileNotFoundError:
            continue
        results[method] = MethodResult(method, run.info.run_id, dict(run.data.metrics), ids, y, probs,
                                       dict(run.data.params))
    if not results:
        raise LookupError(f"experiment {experiment!r} has no finished runs with test metrics")
    return results


def run_report(experiment: str, out_dir: Path, trailers: int = 6) -> dict[str, Any]:
    """Collect, render, and log the report as its own MLflow run (tag kind=report)."""
    import mlflow

    from ctt import tracking
    results = collect(experiment)
    files = render(results, out_dir, experiment, trailers)
    exp_id = tracking.connect(experiment)
    with mlflow.start_run(run_name="report", experiment_id=exp_id) as run:
        mlflow.set_tags({"kind": "report"})
        mlflow.log_params({f"run.{m}": r.run_id for m, r in results.items()})
        for f in files.values():
            mlflow.log_artifact(str(f), "report")
    return {"run_id": run.info.run_id, "files": {k: str(v) for k, v in files.items()},
            "methods": list(_order(results)), "table": text_table(results)}

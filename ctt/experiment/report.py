"""The comparison of an experiment's runs: Table 3 and Table 4 beside the paper's, the
decisions at each run's thresholds and its calibration (beyond the paper), what differs
between the runs' configs, the precision-recall curves per genre (Figure 6), reliability
diagrams, and per-trailer genre probabilities (Figure 7), as Markdown, one HTML page and PNGs.

Every number is computed here from the runs' logged test predictions and thresholds with
`ctt.metrics` (scikit-learn), so the report says what the artifacts say.
`collect` reads MLflow (through `ctt.experiment.tracking.reading`); everything else works on plain values.
"""
from __future__ import annotations

import hashlib
import html
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ctt import metrics as M
from ctt import plots
from ctt.experiment import repeats
from ctt.experiment.tracking import reading, recording
from ctt.paper import METHOD_LABEL, METHOD_ORDER, PROBE_OF, TABLE3, TABLE3_MEASURES, TABLE4
from ctt.tables import fmt as _fmt
from ctt.tables import metrics_table
from ctt.thresholds import DEFAULT
from featurize.genres import GENRES

DECISION_MEASURES = (("precision_micro", "P micro"), ("recall_micro", "R micro"), ("f1_micro", "F1 micro"),
                     ("f1_macro", "F1 macro"), ("f1_samples", "F1 samples"),
                     ("subset_accuracy", "subset acc."), ("ece", "ECE"))
# params that name a run rather than configure it: left out of the config diff
RUN_ONLY = ("tracking.", "features", "n_test", "n_train", "n_val", "visual_run", "audio_run", "leakage.")
BOOTSTRAP = 2000                 # paired bootstrap resamples behind the probe check's intervals


@dataclass
class RunResult:
    method: str
    run_id: str
    run_name: str
    ids: list[str]
    y: np.ndarray
    probs: np.ndarray
    params: dict[str, str]
    thresholds: dict[str, float] = field(default_factory=dict)
    label: str = ""                  # how the report names it: the method, or method + run name
    metrics: dict[str, float] = field(default_factory=dict)
    spread: dict[str, float] = field(default_factory=dict)   # over the run's repeat group: <metric>_mean, _std
    seeds: int = 0                   # runs in its repeat group (0: not a repeat)
    members: list[np.ndarray] = field(default_factory=list)  # the group's test probabilities, in `ids` order
    leakage: dict | None = None      # its store's near-duplicates when it ran (`jobs/dedup.py`); None: no table

    def __post_init__(self) -> None:
        self.metrics = M.evaluate(self.y, self.probs, "test_", self.thresholds or None)

    @property
    def cut(self) -> np.ndarray:
        return np.array([self.thresholds.get(g, DEFAULT) for g in GENRES])


def _rank(method: str) -> int:
    return METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)


def ordered(results: list[RunResult]) -> list[RunResult]:
    return sorted(results, key=lambda r: (_rank(r.method), r.method, r.run_name))


def name_runs(results: list[RunResult]) -> list[RunResult]:
    """Label each run by its method, with its run name when a method has several runs."""
    counts = Counter(r.method for r in results)
    for r in results:
        base = METHOD_LABEL.get(r.method, r.method)
        r.label = base if counts[r.method] == 1 else f"{base} · {r.run_name}"
    return ordered(results)


# ---- tables: (header, rows) of plain strings; `code` cells are written `like this`

def table3(results: list[RunResult]) -> tuple[list[str], list[list[str]]]:
    head = ["method", "run"] + [c for m in TABLE3_MEASURES for c in (m, "paper")]
    rows = []
    for r in results:
        paper = TABLE3.get(r.method, (None,) * 4)
        rows.append([r.label, f"`{r.run_id[:8]}`"] + [c for k, p in zip(TABLE3_MEASURES, paper)
                                                      for c in (_fmt(r.metrics.get("test_" + k)), _fmt(p))])
    return head, rows


def leakage_block(results: list[RunResult]) -> list[tuple[str, Any]]:
    """Beside Table 3: how many near-duplicate groups the stores' splits divide, and when any
    do, test AU(PRC) with the trailers of those groups left out (a score that leaked from
    training drops there)."""
    known = [r for r in results if r.leakage is not None]
    if not known:
        return [("p", "Leakage: no near-duplicate table for these runs' stores; `jobs/dedup.py --features STORE` "
                      "finds the cuts of one film, and `jobs/split.py --groups` keeps each in one split.")]
    counts = sorted({int(r.leakage["groups_straddling"]) for r in known})
    text = (f"Leakage: {' / '.join(map(str, counts))} group(s) of near-duplicate trailers (`jobs/dedup.py`) "
            f"straddle the splits of the runs' stores" + (f"; {len(results) - len(known)} run(s) ran before a "
                                                          "table existed" if len(known) < len(results) else "") + ".")
    if not any(counts):
        return [("p", text + " No test score can have leaked through them.")]
    head = ["method", "run", "test trailers left out", "auprc_micro", "without them", "auprc_macro", "without them"]
    rows = []
    for r in known:
        out = set(r.leakage.get("trailers_straddling", []))
        keep = np.array([t not in out for t in r.ids])
        cut = M.evaluate(r.y[keep], r.probs[keep], "test_") if keep.any() else {}
        rows.append([r.label, f"`{r.run_id[:8]}`", str(int((~keep).sum()))]
                    + [c for k in ("auprc_micro", "auprc_macro")
                       for c in (_fmt(r.metrics.get("test_" + k)), _fmt(cut.get("test_" + k)))])
    return [("p", text + " Test AU(PRC) with the test trailers of those groups left out:"), ("table", (head, rows))]


def table4(results: list[RunResult]) -> tuple[list[str], list[list[str]]]:
    head = ["genre"] + [c for r in results for c in (r.label, "paper")]
    rows = []
    for c, g in enumerate(GENRES):
        rows.append([genre_label(results, c)] + [x for r in results for x in (
            _fmt(r.metrics.get("test_auprc_" + g)), _fmt(TABLE4[r.method][c]) if r.method in TABLE4 else "—")])
    return head, rows


def decision_table(results: list[RunResult]) -> tuple[list[str], list[list[str]]]:
    head = ["method", "thresholds"] + [name for _, name in DECISION_MEASURES]
    rows = [[r.label, "val F1-best" if r.thresholds else "0.5"]
            + [_fmt(r.metrics.get("test_" + k)) for k, _ in DECISION_MEASURES] for r in results]
    return head, rows


def genre_f1_table(results: list[RunResult]) -> tuple[list[str], list[list[str]]]:
    head = ["genre"] + [c for r in results for c in (f"{r.label} F1", "P", "R", "threshold")]
    rows = []
    for c, g in enumerate(GENRES):
        rows.append([genre_label(results, c)] + [x for r in results for x in (
            _fmt(r.metrics.get(f"test_f1_{g}")), _fmt(r.metrics.get(f"test_precision_{g}")),
            _fmt(r.metrics.get(f"test_recall_{g}")), _fmt(r.thresholds.get(g, DEFAULT)))])
    return head, rows


def genre_label(results: list[RunResult], c: int) -> str:
    """A genre's row name; a genre no test trailer carries says so (its measures are undefined)."""
    positives = max((int(r.y[:, c].sum()) for r in results if len(r.y)), default=0)
    return GENRES[c] if positives else f"{GENRES[c]} (no test trailer has it: nothing to measure)"


LONG_VALUE = 40          # longer param values show as a digest in the config table


def _shown(value: str | None) -> str:
    if value is None:
        return "—"
    if len(value) <= LONG_VALUE:
        return f"`{value}`"
    return f"`{hashlib.sha1(value.encode()).hexdigest()[:8]}` ({len(value)} chars)"


def config_diff(results: list[RunResult], limit: int = 30) -> tuple[list[str], list[list[str]]]:
    """The params whose values differ between the runs that have them (those that only name a
    run left out; a param only some runs have, with one value, is no difference); long
    values (a list of 60 names) as a short digest."""
    keys = sorted({k for r in results for k in r.params if not k.startswith(RUN_ONLY)})
    differ = [k for k in keys if len({r.params[k] for r in results if k in r.params}) > 1]
    return ["param"] + [r.label for r in results], [[k] + [_shown(r.params.get(k)) for r in results]
                                                     for k in differ[:limit]]


def paired(r: RunResult, q: RunResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, r's scores, q's scores) on the test trailers both runs scored, in one order;
    r's scores are (S, N, C), one per member of its repeat group (S = 1 for a single run)."""
    where = {t: i for i, t in enumerate(q.ids)}
    both = [(i, where[t]) for i, t in enumerate(r.ids) if t in where]
    ri, qi = (np.array([p[k] for p in both], dtype=np.int64) for k in (0, 1))
    runs = np.stack([m[ri] for m in r.members]) if r.members else r.probs[ri][None]
    return r.y[ri], runs, q.probs[qi]


def versus(r: RunResult, q: RunResult) -> tuple[dict[str, tuple[float, float, float]], str]:
    """Macro and micro AU(PRC) differences of r over q with 90% paired-bootstrap intervals (for
    a repeat group: the mean over its seeds, each resample shared by all), and the verdict:
    below (an interval entirely under 0), above (one entirely over 0, none under), or within
    noise."""
    y, a, b = paired(r, q)
    d = {avg: M.bootstrap_difference(y, a, b, avg, n=BOOTSTRAP) for avg in ("macro", "micro")}
    if any(hi < 0 for _, _, hi in d.values()):
        return d, "**below its probe**"
    return d, "above its probe" if any(lo > 0 for _, lo, _ in d.values()) else "matches (within noise)"


def _diff(d: tuple[float, float, float]) -> str:
    return f"{d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}]"


def probe_table(results: list[RunResult]) -> tuple[list[str], list[list[str]]]:
    """Each model beside the linear probe on the same input (the first run of that probe):
    a deep model beside the probe on its pooled store column, an SVM beside the probe on its
    descriptor vector, with the differences and their bootstrap intervals (`versus`). A run of
    a repeat group stands for the group: its seeds' mean AU(PRC) and mean difference."""
    probes = {}
    for r in results:
        probes.setdefault(r.method, r)
    head = ["model", "seeds", "probe", "macro", "probe macro", "difference [90% CI]", "micro", "probe micro",
            "difference [90% CI]", "check"]
    rows = []
    for r in results:
        q = probes.get(PROBE_OF.get(r.method, ""))
        if q is None:
            continue
        d, verdict = versus(r, q)
        mine = {k: (r.spread.get(f"test_auprc_{k}_mean") if len(r.members) > 1 else r.metrics.get(f"test_auprc_{k}"))
                for k in ("macro", "micro")}
        rows.append([r.label, str(max(1, len(r.members))), q.label, _fmt(mine["macro"]),
                     _fmt(q.metrics.get("test_auprc_macro")), _diff(d["macro"]), _fmt(mine["micro"]),
                     _fmt(q.metrics.get("test_auprc_micro")), _diff(d["micro"]), verdict])
    return head, rows


SPREAD_MEASURES = (*TABLE3_MEASURES, "f1_micro", "f1_macro", "ece")


def spread_table(results: list[RunResult]) -> tuple[list[str], list[list[str]]]:
    head = ["method", "seeds"] + list(SPREAD_MEASURES)
    rows = [[r.label, str(r.seeds)] + [f"{_fmt(r.spread.get(f'test_{k}_mean'))} ± {_fmt(r.spread.get(f'test_{k}_std'))}"
                                        for k in SPREAD_MEASURES] for r in results if r.seeds]
    return head, rows


def within_spread(results: list[RunResult], measure: str = "auprc_micro") -> list[tuple[str, str]]:
    """Pairs of repeated runs whose means differ by no more than the sum of their standard
    deviations on `measure`: a difference the seeds alone could make."""
    rep = [r for r in results if r.seeds > 1]
    out = []
    for i, a in enumerate(rep):
        for b in rep[i + 1:]:
            ma, mb = a.spread.get(f"test_{measure}_mean"), b.spread.get(f"test_{measure}_mean")
            sa, sb = a.spread.get(f"test_{measure}_std"), b.spread.get(f"test_{measure}_std")
            if None not in (ma, mb, sa, sb) and abs(ma - mb) <= sa + sb:
                out.append((a.label, b.label))
    return out


def text_table(results: list[RunResult]) -> str:
    """Table 3 for a terminal: this run's numbers, the paper's in brackets (by method)."""
    rows = [(r.label, r.metrics) for r in results]
    paper = {r.label: TABLE3[r.method] for r in results if r.method in TABLE3}
    return metrics_table(rows, paper)


def pick_trailers(r: RunResult, k: int = 6) -> list[int]:
    """A few test trailers to show: the most and least confident correct ones, spread out."""
    if not len(r.ids):
        return []
    hit = (r.probs * r.y).sum(1) / np.maximum(r.y.sum(1), 1)
    order = np.argsort(-hit, kind="stable")
    return sorted(set(order[np.linspace(0, len(order) - 1, min(k, len(order))).astype(int)].tolist()))


# ---- the page: blocks rendered once as Markdown and once as HTML

def _md_table(head: list[str], rows: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in row] for row in [head, *rows]]
    return "\n".join(["| " + " | ".join(esc[0]) + " |", "|" + "---|" * len(head)]
                     + ["| " + " | ".join(row) + " |" for row in esc[1:]])


def _html_cell(text: str, tag: str) -> str:
    inner = re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(text))
    return f"<{tag}>{inner}</{tag}>"


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    return ('<div class="scroll"><table><thead><tr>' + "".join(_html_cell(h, "th") for h in head)
            + "</tr></thead><tbody>" + "".join("<tr>" + "".join(_html_cell(c, "td") for c in row) + "</tr>"
                                              for row in rows)
            + "</tbody></table></div>")


CURVES = 5               # the figures draw the runs best on test micro AU(PRC), at most this many

CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}thead{background:#eef2f7}code{font-size:0.95em}
img{max-width:100%;border:1px solid #eee}"""


def to_markdown(blocks: list[tuple[str, Any]]) -> str:
    out = []
    for kind, value in blocks:
        if kind in ("h1", "h2"):
            out += [("# " if kind == "h1" else "## ") + value, ""]
        elif kind == "p":
            out += [value, ""]
        elif kind == "table":
            out += [_md_table(*value), ""]
        elif kind == "img":
            out += [f"![{value[1]}]({value[0]})", ""]
    return "\n".join(out)


def to_html(blocks: list[tuple[str, Any]], title: str) -> str:
    body = []
    for kind, value in blocks:
        if kind in ("h1", "h2"):
            body.append(_html_cell(value, kind))
        elif kind == "p":
            body.append(_html_cell(value, "p"))
        elif kind == "table":
            body.append(_html_table(*value))
        elif kind == "img":
            body.append(f'<p><img src="{html.escape(value[0])}" alt="{html.escape(value[1])}"></p>')
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")


def render(results: list[RunResult], out_dir: Path, experiment: str, trailers: int = 6,
           chosen: str = "") -> dict[str, Path]:
    """Write report.md, report.html and the PNGs into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"markdown": out_dir / "report.md", "html": out_dir / "report.html",
             "pr_curves": out_dir / "pr_curves.png", "reliability": out_dir / "reliability.png",
             "predictions": out_dir / "predictions.png"}
    best = sorted(results, key=lambda r: -float(r.metrics.get("test_auprc_micro", 0.0)))[:CURVES]
    curves = {r.label: (r.y, r.probs) for r in results if r in best}
    plots.save(plots.pr_figure(curves, "Precision-recall per genre on the test split"), files["pr_curves"])
    plots.save(plots.reliability_figure(curves, "Calibration on the test split"), files["reliability"])
    shown = next((r for m in ("ctt-tn", "ctt-c", "ctt-a", "ctt-b") for r in results if r.method == m), results[-1])
    rows = pick_trailers(shown, trailers)
    plots.save(plots.probability_bars([shown.ids[i] for i in rows], shown.probs[rows], shown.y[rows] > 0.5,
                                      shown.cut, f"{shown.label}: predicted probabilities (dark: true genres; "
                                                 "ticks: the run's thresholds)"),
               files["predictions"])
    which = chosen or "the latest finished run of each method"
    blocks: list[tuple[str, Any]] = [
        ("h1", f"CTT-MMC report: experiment `{experiment}`"),
        ("p", f"Test-split results of {which}, computed from each run's logged test predictions. "
              "The paper's numbers (LMTD-9, 772 test trailers) are beside them for reference; they are "
              "comparable only for runs on LMTD-9 features."),
        ("h2", "Table 3: AU(PRC) (higher is better) and ranking loss (lower is better)"), ("table", table3(results)),
        *leakage_block(results),
        ("h2", "Table 4: AU(PRC) per genre"), ("table", table4(results)),
        ("p", "Test trailers per run: " + ", ".join(f"{r.label} {len(r.ids)}" for r in results)
              + " (audio models score only trailers with audio)."),
        ("h2", "Decisions and calibration (beyond the paper)"),
        ("p", "A genre is predicted when its probability reaches the run's threshold for it (chosen on "
              "validation for best F1; 0.5 for runs without). Precision, recall and F1 over every "
              "(trailer, genre) decision (micro) and averaged over genres (macro); F1 samples: per trailer, "
              "averaged; subset accuracy: trailers whose whole genre set is right; ECE: expected calibration "
              f"error over {M.ECE_BINS} probability bins (lower is better)."),
        ("table", decision_table(results)),
        ("h2", "F1, precision, recall and threshold per genre"), ("table", genre_f1_table(results)),
    ]
    against = probe_table(results)
    if against[1]:
        blocks += [("h2", "Against the linear probe (beyond the paper)"),
                   ("p", "Each model beside a logistic regression on pooled columns of the same store "
                         "(`jobs/baselines.py --method probe`), and each SVM beside one on its own "
                         f"descriptor vector: a model below its probe learns less than its frozen input "
                         f"allows. Differences are over the test trailers both scored, with 90% intervals "
                         f"from {BOOTSTRAP} paired bootstrap resamples of those trailers; a model is "
                         f"flagged below (or above) its probe only when an interval excludes 0. A model "
                         f"trained over several seeds (`--seeds`) is judged by its seeds' mean."),
                   ("table", against)]
    if any(r.seeds for r in results):
        close = within_spread(results)
        blocks += [("h2", "Spread over seeds (beyond the paper)"),
                   ("p", "Mean ± standard deviation of each measure over the runs of a repeat group "
                         "(`jobs/train.py --seeds N`; fused groups pair their members by seed)."),
                   ("table", spread_table(results)),
                   ("p", "Within the spread on micro AU(PRC) (|difference of means| ≤ sum of standard deviations): "
                         + ("; ".join(f"{a} vs {b}" for a, b in close) if close else
                            "none: every difference between repeated methods is larger than their spread") + ".")]
    diff = config_diff(results) if len(results) > 1 else None
    if diff and diff[1]:
        blocks += [("h2", "What differs between the runs' configs"), ("table", diff)]
    blocks += [("h2", "Precision-recall curves (Figure 6)"),
               ("p", f"The {min(CURVES, len(results))} runs best on test micro AU(PRC); each panel's legend gives "
                     "the genre's AU(PRC)."),
               ("img", ("pr_curves.png", "pr curves")),
               ("h2", "Reliability diagram"), ("img", ("reliability.png", "reliability")),
               ("h2", f"Predicted probabilities for a few test trailers (Figure 7, {shown.label})"),
               ("img", ("predictions.png", "predictions"))]
    files["markdown"].write_text(to_markdown(blocks))
    files["html"].write_text(to_html(blocks, f"CTT-MMC report: {experiment}"))
    return files


def collect(experiment: str, filter_string: str = "", run_ids: list[str] | None = None) -> list[RunResult]:
    """The runs to compare: `run_ids`, or every finished run matching `filter_string`, or by
    default the latest finished run of each method (tag `method`) of the experiment. Only
    runs with logged test predictions count; report runs never do."""
    records = reading.get_runs(run_ids) if run_ids else reading.find_runs(experiment, filter_string)
    results: list[RunResult] = []
    seen: set[str] = set()
    groups: dict[tuple, tuple] = {}          # a group's members are read once, however many of them are listed
    for run in records:
        method = run.tags.get("method")
        if not method or run.tags.get("kind") == "report" or (not (run_ids or filter_string) and method in seen):
            continue
        try:
            ids, y, probs = reading.read_predictions(run.run_id, "test")
        except FileNotFoundError:
            continue
        seen.add(method)
        r = RunResult(method, run.run_id, run.name, ids, y, probs, run.params, reading.read_thresholds(run.run_id))
        if run.params.get("leakage.dedup_table") == "True":
            r.leakage = reading.read_json(run.run_id, recording.LEAKAGE_FILE)
        group = run.tags.get(repeats.GROUP_TAG)
        if group:
            key = (group, tuple(ids))
            groups[key] = groups.get(key) or group_spread(experiment, group, ids)
            r.spread, r.seeds, r.members = groups[key]
        results.append(r)
    if not results:
        what = f"runs {run_ids}" if run_ids else f"experiment {experiment!r}" + (
            f" (filter {filter_string!r})" if filter_string else "")
        raise LookupError(f"{what}: no finished runs with test predictions")
    return name_runs(results)


def group_spread(experiment: str, group: str,
                 ids: list[str]) -> tuple[dict[str, float], int, list[np.ndarray]]:
    """The spread of the test metrics of a repeat group's finished runs, each computed from
    its logged predictions at its thresholds; and each member's test probabilities in the
    order of `ids` (members that scored other trailers are left out of that list)."""
    members, probs = [], []
    for run in reading.find_runs(experiment, f"tags.{repeats.GROUP_TAG} = '{group}'"):
        try:
            mine, y, p = reading.read_predictions(run.run_id, "test")
        except FileNotFoundError:
            continue
        members.append(M.evaluate(y, p, "test_", reading.read_thresholds(run.run_id) or None))
        if sorted(mine) == sorted(ids):
            where = {t: i for i, t in enumerate(mine)}
            probs.append(p[[where[t] for t in ids]])
    return repeats.spread(members), len(members), probs


def run_report(experiment: str, out_dir: Path, trailers: int = 6, filter_string: str = "",
               run_ids: list[str] | None = None) -> dict[str, Any]:
    """Collect, render, and log the report as its own MLflow run (tag kind=report)."""
    results = collect(experiment, filter_string, run_ids)
    chosen = (f"the runs {', '.join(r[:8] for r in run_ids)}" if run_ids else
              f"every finished run matching `{filter_string}`" if filter_string else "")
    files = render(results, out_dir, experiment, trailers, chosen)
    compared = {f"run.{r.method}" + (f".{r.run_name}" if " · " in r.label else ""): r.run_id for r in results}
    with recording.record_run("report", "report", experiment=experiment,
                              params=compared | ({"filter": filter_string} if filter_string else {})) as run_id:
        recording.log_files(run_id, list(files.values()), "report")
    return {"run_id": run_id, "files": {k: str(v) for k, v in files.items()},
            "methods": [r.label for r in results], "table": text_table(results)}

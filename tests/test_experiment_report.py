"""What a person reads of an experiment: the MLflow UI's runs table, the report built from the
runs (Markdown, HTML, figures), and the spread of repeats over seeds."""
import numpy as np
import pytest
import torch

from featurize.genres import GENRES
from tests.experiment_helpers import client, table_row, summary

pytestmark = pytest.mark.slow


def test_mlflow_ui_lists_runs_with_their_stores(runs, store, tracking_env, browser, ray_head):
    """The runs table of the MLflow UI (headless Chromium), opened from a job's link: the training
    runs on one store and a baseline on another, each with its store in the Dataset column; the
    two stores' runs differ in their params."""
    from jobs import baselines
    assert baselines.main(["--features", str(store[0]), "--method", "random", "tracking.experiment=methods",
                           "tracking.run_name=random-on-small-store"]) == 0
    c = client(tracking_env)
    exp = c.get_experiment_by_name("methods")
    small = c.search_runs([exp.experiment_id], "attributes.run_name = 'random-on-small-store'")[0]
    big = c.get_run(runs["ctt-c"]["run_id"])
    digests = {r.info.run_name: r.inputs.dataset_inputs[0].dataset.digest for r in (small, big)}
    assert len(set(digests.values())) == 2
    assert small.data.params["features"] != big.data.params["features"]
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(runs["ctt-c"]["experiment_url"], wait_until="load", timeout=90_000)
        for name in (small.info.run_name, big.info.run_name):
            page.get_by_text(name).first.wait_for(timeout=60_000)
        for digest in digests.values():                               # the Dataset column: store (digest)
            page.get_by_text(digest).first.wait_for(timeout=30_000)
        assert "Model training" in page.inner_text("body")
    finally:
        page.close()
    assert not errors, errors


def test_report_renders_from_the_runs(runs, tracking_env, tmp_path, capsys, browser):
    from sklearn.metrics import accuracy_score, average_precision_score, f1_score, precision_score

    from ctt.experiment.tracking.reading import read_predictions, read_thresholds
    from jobs import fuse, report
    fuse.main(["--visual", runs["ctt-c"]["run_id"], "--audio", runs["ctt-s"]["run_id"], "tracking.experiment=methods"])
    assert report.main(["--experiment", "methods", "--output", str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    md = (tmp_path / "rep" / "report.md").read_text()
    for label in ("CTT-MMC-C", "CTT-MMC-S", "CTT-MMC-TN", "LSTM"):
        assert label in md and label in out
    c = client(tracking_env)
    metrics = c.get_run(runs["ctt-c"]["run_id"]).data.metrics
    assert f"{metrics['test_auprc_macro']:.3f}" in md and "0.624" in md        # ours beside the paper's
    assert md.count("| action |") == 2 and "0.813" in md                        # Table 4 with the paper's
    # every number is scikit-learn's on the run's logged predictions, at the run's thresholds
    for label, key in (("CTT-MMC-C", "ctt-c"), ("LSTM", "lstm"), ("CTT-MMC-S", "ctt-s")):
        rid = runs[key]["run_id"]
        _, y, probs = read_predictions(rid, "test")
        th = read_thresholds(rid)
        pred = (probs >= np.array([th[g] for g in GENRES])).astype(int)
        t3 = table_row(md, "## Table 3", label)
        assert t3[2] == f"{average_precision_score(y[:, y.sum(0) > 0], probs[:, y.sum(0) > 0], average='macro'):.3f}"
        assert t3[4] == f"{average_precision_score(y, probs, average='micro'):.3f}"
        dec = table_row(md, "## Decisions", label)
        assert dec[1] == "val F1-best"
        assert dec[2] == f"{precision_score(y, pred, average='micro', zero_division=0):.3f}"
        assert dec[4] == f"{f1_score(y, pred, average='micro', zero_division=0):.3f}"
        assert dec[6] == f"{f1_score(y, pred, average='samples', zero_division=0):.3f}"
        assert dec[7] == f"{accuracy_score(y, pred):.3f}"
        assert float(dec[8]) == pytest.approx(c.get_run(rid).data.metrics["test_ece"], abs=5e-4)
        head = [h.strip() for h in md[md.index("## F1, precision"):].splitlines()[2].strip("|").split(" | ")]
        assert table_row(md, "## F1, precision", "action")[head.index(f"{label} F1")] == \
            f"{f1_score(y[:, 0], pred[:, 0], zero_division=0):.3f}"
    # leakage beside Table 3: the groups of the store's dedup table its splits divide, counted here
    import pandas as pd
    from featurize import store as fstore
    groups = pd.read_parquet(runs["store"] / "_dedup" / "groups.parquet")
    split = fstore.read_table(str(runs["store"]), columns=["trailer_id", "split"]).to_pandas()
    merged = groups[["trailer_id", "group"]].merge(split, on="trailer_id")
    divided = merged.groupby("group").split.nunique()
    expected = int((divided > 1).sum())
    assert expected == 2                                       # the planted films cut across splits
    assert f"Leakage: {expected} group(s) of near-duplicate trailers" in md
    left_out = merged[merged.group.isin(divided[divided > 1].index) & (merged.split == "test")].trailer_id
    row = table_row(md, "Leakage:", "CTT-MMC-C")
    assert row[2] == str(len(left_out))
    ids, y, probs = read_predictions(runs["ctt-c"]["run_id"], "test")
    keep = ~np.isin(ids, left_out)
    assert row[4] == f"{average_precision_score(y[keep], probs[keep], average='micro'):.3f}"
    assert c.get_run(runs["ctt-c"]["run_id"]).data.metrics["leakage_groups_straddling"] == expected
    for png in ("pr_curves.png", "predictions.png", "reliability.png"):
        assert (tmp_path / "rep" / png).read_bytes()[:4] == b"\x89PNG"
    exp = c.get_experiment_by_name("methods")
    rep = c.search_runs([exp.experiment_id], "tags.kind = 'report'")[0]
    assert {a.path for a in c.list_artifacts(rep.info.run_id, "report")} >= {
        "report/report.md", "report/report.html", "report/pr_curves.png", "report/predictions.png",
        "report/reliability.png"}
    # the HTML page in a real browser: it renders, its images load, the console stays quiet
    page, errors = browser.new_page(), []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto((tmp_path / "rep" / "report.html").as_uri(), wait_until="load")
        # no horizontal scroll at 1280 px: wide tables scroll inside their own box
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
        assert len(images) == 3 and all(done and w > 100 for done, w in images), images
        assert page.locator("table").count() >= 4 and "CTT-MMC-TN" in page.inner_text("body")
    finally:
        page.close()
    assert not errors, errors
    # chosen runs: two methods' runs by id, with what differs between their configs
    ids = [runs["ctt-c"]["run_id"], runs["ctt-s"]["run_id"]]
    assert report.main(["--experiment", "methods", "--runs", *ids, "--output", str(tmp_path / "two")]) == 0
    two = (tmp_path / "two" / "report.md").read_text()
    assert "What differs between the runs' configs" in two and "| model.name | `ctt-c` | `ctt-s` |" in two.replace(
        "| model.name | `ctt-s` | `ctt-c` |", "| model.name | `ctt-c` | `ctt-s` |")
    assert "LSTM" not in two
    section = two.split("What differs between the runs' configs")[1].split("\n## ")[0]
    rows = [line.split("|")[2:-1] for line in section.splitlines() if line.startswith("| ") and "param" not in line]
    assert rows and all(len({c.strip() for c in r if c.strip() != "—"}) > 1 for r in rows)   # only what differs
    with pytest.raises(SystemExit) as bad:
        report.main(["--experiment", "methods", "--filter", "params.model.name ==== 'x'"])
    assert bad.value.code == 2 and "search expression" in capsys.readouterr().err


def test_repeats_over_seeds_report_their_spread(medium_store, tracking_env, tmp_path, capsys):
    """--seeds 2 for a visual model: a parent run with two children, the mean and std of every
    test metric on the parent; fusing it with an audio parent pairs the children by seed; the
    report shows mean ± std from the children's logged predictions. (The audio parent's
    children are untrained CTT-MMC-S networks scored and logged as runs, which keeps the test
    to two Ray Train runs.)"""
    import copy

    from sklearn.metrics import average_precision_score

    from ctt.experiment import repeats
    from ctt.config import ModelConfig, load_config
    from ctt.data import columns_of, labels, sort_by_id
    from ctt.models import build_model
    from ctt.predictor import Predictor, member
    from ctt.experiment.method_runs import log_method_run
    from ctt.experiment.tracking.reading import read_predictions
    from featurize import store as fstore
    from jobs import fuse, report, train
    c = client(tracking_env)
    base = ["--features", str(medium_store), "--seeds", "2", "--experiment", "seeds", "resources.num_workers=1",
            "train.batch_size=16", "train.max_epochs=2", "train.checkpoint_every=2", f"tracking.storage_path={tmp_path}"]
    parents = {}
    assert train.main([*base, "--model", "ctt-c"]) == 0
    s = summary(capsys.readouterr().out, "train summary: ")
    parents["ctt-c"] = s["run_id"]
    assert [ch["seed"] for ch in s["children"]] == [0, 1]
    kids = [c.get_run(ch["run_id"]) for ch in s["children"]]
    assert all(k.data.tags["mlflow.parentRunId"] == s["run_id"] for k in kids)
    assert [k.data.params["train.seed"] for k in kids] == ["0", "1"]
    micro = [k.data.metrics["test_auprc_micro"] for k in kids]
    pm = c.get_run(s["run_id"]).data.metrics
    assert pm["test_auprc_micro_mean"] == pytest.approx(np.mean(micro))
    assert pm["test_auprc_micro_std"] == pytest.approx(np.std(micro))
    settings = fstore.settings_of(str(medium_store))

    def audio_child(cfg, tags):
        cfg = copy.deepcopy(cfg)
        cfg.model = ModelConfig(name="ctt-s", n=4, parts=2, test_draws=1)
        torch.manual_seed(cfg.train.seed)
        m = member(build_model(cfg.model, 0), cfg, int(settings["settings"]["feature_dim"]), settings)
        splits = {}
        for split in ("val", "test"):
            t = sort_by_id(fstore.read_table(str(medium_store), columns_of("ctt-s"),
                                             fstore.split_filter(split, "spectrograms")))
            splits[split] = (t.column("trailer_id").to_pylist(), labels(t).numpy(), m.scorer(t))
        return log_method_run(cfg, "train", "ctt-s", test=splits["test"], val=splits["val"],
                              servable=Predictor("", {"audio": m}, 1.0, {}), tags=tags)

    cfg = load_config(None, ["tracking.experiment=seeds"])
    parents["ctt-s"] = repeats.run_repeats(cfg, "train", "ctt-s", [0, 1], audio_child)["run_id"]
    assert fuse.main(["--visual", parents["ctt-c"], "--audio", parents["ctt-s"], "tracking.experiment=seeds"]) == 0
    fused = summary(capsys.readouterr().out, "fuse summary: ")
    for ch in fused["children"]:
        p = c.get_run(ch["run_id"]).data
        for role in ("visual_run", "audio_run"):                     # members of the same seed
            assert c.get_run(p.params[role]).data.tags["seed"] == str(ch["seed"]) == p.tags["seed"]
    assert report.main(["--experiment", "seeds", "--output", str(tmp_path / "rep")]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    for label, parent in (("CTT-MMC-C", parents["ctt-c"]), ("CTT-MMC-TN", fused["run_id"])):
        row = table_row(md, "## Spread over seeds", label)
        kids = c.search_runs([c.get_experiment_by_name("seeds").experiment_id], f"tags.repeat_group = '{parent}'")
        micro = [average_precision_score(*read_predictions(k.info.run_id, "test")[1:], average="micro") for k in kids]
        assert row[1] == "2" and row[3] == f"{np.mean(micro):.3f} ± {np.std(micro):.3f}", (row, micro)
    assert "Within the spread on micro AU(PRC)" in md

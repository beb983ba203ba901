"""Every method of the paper on one feature store, against a real MLflow server and Ray head:
ctt-c, ctt-s, lstm, Two-Nets, the SVM and random baselines, and the report built from the runs."""
import glob
import os
import re
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from featurize.genres import GENRES


pytestmark = pytest.mark.slow
LSTM = ["train.max_epochs=4", "train.checkpoint_every=4"]
SHORT = ["resources.num_workers=2", "train.batch_size=16", "train.checkpoint_every=10",
         "tracking.experiment=methods"]


@pytest.fixture(scope="module")
def tracking_env(mlflow_server):
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    yield mlflow_server.url
    mp.undo()


def _train(store, name, tmp_path, *extra):
    from ctt.config import load_config
    from ctt.experiment.distributed.train_driver import run_training
    cfg = load_config(None, SHORT + [f"model.name={name}", f"tracking.storage_path={tmp_path}", *extra])
    return run_training(str(store), cfg)


@pytest.fixture(scope="module")
def runs(medium_store, tracking_env, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ckpt")
    staged_before = set(glob.glob(os.path.join(tempfile.gettempdir(), "ctt_ckpt_*")))
    out = {
        "ctt-c": _train(medium_store, "ctt-c", tmp, "train.max_epochs=16", "train.patience=16"),
        "ctt-s": _train(medium_store, "ctt-s", tmp, "train.max_epochs=4", "train.checkpoint_every=4", "model.parts=4",
                        "model.test_draws=3", "train.calibration=platt"),
        "lstm": _train(medium_store, "lstm", tmp, *LSTM),
    }
    out["staged_left"] = set(glob.glob(os.path.join(tempfile.gettempdir(), "ctt_ckpt_*"))) - staged_before
    return out


def test_checkpoint_staging_is_cleaned_up(runs, tmp_path_factory):
    """Checkpoints reach the run's storage; the worker-side staging directories do not pile up."""
    assert runs["staged_left"] == set()
    assert list(tmp_path_factory.getbasetemp().glob("ckpt*/**/state.pt"))


def _client(url):
    import mlflow
    return mlflow.MlflowClient(url)


def test_ctt_c_clearly_beats_random(runs):
    """Against random scores on the same test labels (200 draws): the trained model must beat 95 %
    of random scorers on micro AUPRC and ranking loss, and their mean on macro AUPRC. With a
    dozen test trailers and a random-init backbone the model is weak, and a fixed margin over
    the random mean would test the draw of features more than the training."""
    from ctt import metrics
    from ctt.experiment.tracking.reading import read_predictions
    s = runs["ctt-c"]
    _, y, probs = read_predictions(s["run_id"], "test")
    rng = np.random.default_rng(0)
    rand = {k: np.array(v) for k, v in pd.DataFrame(
        [metrics.evaluate(y, rng.random(y.shape)) for _ in range(200)]).items()}
    got = {k: s["test"]["test_" + k] for k in ("auprc_macro", "auprc_micro", "ranking_loss")}
    ref = {"micro_q95": np.quantile(rand["auprc_micro"], 0.95), "rank_q05": np.quantile(rand["ranking_loss"], 0.05),
           "macro_mean": np.nanmean(rand["auprc_macro"])}
    assert got["auprc_micro"] > ref["micro_q95"], (got, ref)
    assert got["ranking_loss"] < ref["rank_q05"], (got, ref)
    assert got["auprc_macro"] > ref["macro_mean"], (got, ref)
    # the logged test metrics are those of the logged predictions
    assert abs(metrics.evaluate(y, probs)["auprc_micro"] - got["auprc_micro"]) < 1e-6


def test_audio_and_lstm_runs_are_logged(runs, tracking_env, medium_store, tmp_path):
    import pyarrow.dataset as pads

    from ctt.experiment.tracking.reading import read_predictions
    c = _client(tracking_env)
    t = pads.dataset(str(medium_store)).to_table(columns=["trailer_id", "split", "has_audio"]).to_pandas()
    test_ids = sorted(t[t.split == "test"].trailer_id)
    assert "mute1" in test_ids and not t.set_index("trailer_id").has_audio["mute1"]
    for name, expected_params in (("ctt-s", 2 * 513 + 513 * 3 * 256 + 256 + 256 * 9 + 9),
                                  ("lstm", 4 * (512 * 256 + 256 * 256 + 512) + 256 * 9 + 9)):
        run = c.get_run(runs[name]["run_id"])
        assert run.info.status == "FINISHED" and run.data.tags["method"] == name
        assert int(run.data.params["num_params"]) == expected_params
        assert len(c.get_metric_history(run.info.run_id, "val_auprc_micro")) == 4
        ids, y, probs = read_predictions(run.info.run_id, "test")
        assert probs.shape == (len(ids), 9) and np.all((probs >= 0) & (probs <= 1))
        # the audio model has no prediction for the trailer without audio; the visual ones have
        assert ids == ([i for i in test_ids if i != "mute1"] if name == "ctt-s" else test_ids)
        assert read_predictions(run.info.run_id, "val")[0]
        th = c.download_artifacts(run.info.run_id, "model/thresholds.json", str(tmp_path))
        import json
        assert set(json.loads(Path(th).read_text())) == set(GENRES)


def test_fuse_is_its_own_run(runs, tracking_env, medium_store, capsys):
    import mlflow

    from ctt.experiment.tracking.reading import read_predictions
    from featurize.store import read_table
    from jobs import fuse
    assert fuse.main(["--visual", runs["ctt-c"]["run_id"], "--audio", runs["ctt-s"]["run_id"],
                      "tracking.experiment=methods", "tracking.register_as=ctt-mmc-tn",
                      "tracking.register_alias=champion"]) == 0
    out = capsys.readouterr().out
    c = _client(tracking_env)
    exp = c.get_experiment_by_name("methods")
    run = c.search_runs([exp.experiment_id], "tags.method = 'ctt-tn'")[0]
    w = float(run.data.params["visual_weight"])
    assert w in np.round(np.linspace(1, 0, 21), 6) and f"{w:.2f}" in out
    assert run.data.params["visual_run"] == runs["ctt-c"]["run_id"]
    ids, y, fused = read_predictions(run.info.run_id, "test")
    vids, _, visual = read_predictions(runs["ctt-c"]["run_id"], "test")
    aids, _, audio = read_predictions(runs["ctt-s"]["run_id"], "test")
    assert ids == vids
    i = ids.index("mute1")
    np.testing.assert_allclose(fused[i], visual[i], atol=1e-6)        # no audio: the visual probabilities
    j, k = ids.index(aids[0]), 0
    np.testing.assert_allclose(fused[j], w * visual[j] + (1 - w) * audio[k], atol=1e-6)
    for key in ("test_auprc_micro", "test_auprc_macro", "test_auprc_weighted", "test_ranking_loss",
                "visual_weight"):
        assert key in run.data.metrics
    # one registered pyfunc model holds both members and the weight: it gives the run's test
    # probabilities from the store's frames and spectrograms (the mute trailer: visual only)
    model = mlflow.pyfunc.load_model("models:/ctt-mmc-tn@champion")
    pick = ["mute1", aids[0], aids[1]]
    rows = read_table(str(medium_store)).to_pandas().set_index("trailer_id").loc[pick]
    df = pd.DataFrame({"trailer_id": pick, "frames": list(rows.frames), "spectrograms": list(rows.spectrograms)})
    served = model.predict(df)
    np.testing.assert_allclose(served[list(GENRES)].to_numpy(), fused[[ids.index(t) for t in pick]], atol=1e-5)
    assert model.unwrap_python_model().predictor.visual_weight == w
    # per-genre weights (an option): each genre mixes by its own weight, in the run and when served
    assert fuse.main(["--visual", runs["ctt-c"]["run_id"], "--audio", runs["ctt-s"]["run_id"],
                      "tracking.experiment=methods", "fusion.per_genre=true", "tracking.register_as=ctt-mmc-tn-pg"]) == 0
    assert "per genre" in capsys.readouterr().out
    pg = c.search_runs([exp.experiment_id], "tags.method = 'ctt-tn' and params.`fusion.per_genre` = 'True'")[0]
    wg = np.array([float(pg.data.params[f"visual_weight_{g}"]) for g in GENRES])
    _, _, fused_pg = read_predictions(pg.info.run_id, "test")
    np.testing.assert_allclose(fused_pg[j], wg * visual[j] + (1 - wg) * audio[k], atol=1e-6)
    served = mlflow.pyfunc.load_model("models:/ctt-mmc-tn-pg/1").predict(df)
    np.testing.assert_allclose(served[list(GENRES)].to_numpy(), fused_pg[[ids.index(t) for t in pick]], atol=1e-5)


def test_baselines_log_runs(medium_store, tracking_env, ray_head):
    from jobs import baselines
    assert baselines.main(["--features", str(medium_store), "--method", "vllf", "--method", "av",
                           "--method", "random", "tracking.experiment=methods",
                           "baseline.C=[1.0,100.0]", "baseline.gamma=[0.1,1.0]"]) == 0
    from ctt.experiment.tracking.reading import read_predictions
    c = _client(tracking_env)
    exp = c.get_experiment_by_name("methods")
    for method in ("vllf", "av", "random"):
        run = c.search_runs([exp.experiment_id], f"tags.method = '{method}'")[0]
        assert 0 <= run.data.metrics["test_auprc_micro"] <= 1
        ids, y, probs = read_predictions(run.info.run_id, "test")
        assert len(ids) == 13 and np.all((probs >= 0) & (probs <= 1))
        if method != "random":
            assert int(run.data.params["grid_points"]) == 2 * (1 + 2)
    # the grid chosen by 5-fold cross-validation over train instead of the val split
    import json

    from ctt import svm
    from ctt.experiment.baselines import load_split
    assert baselines.main(["--features", str(medium_store), "--method", "av", "tracking.experiment=cv-selection",
                           "baseline.C=[1.0,100.0]", "baseline.gamma=[0.1,1.0]", "baseline.selection=cv"]) == 0
    run = c.search_runs([c.get_experiment_by_name("cv-selection").experiment_id], "tags.method = 'av'")[0]
    assert run.data.params["baseline.selection"] == "cv"
    with tempfile.TemporaryDirectory() as tmp:
        logged = json.loads(Path(c.download_artifacts(run.info.run_id, "metrics/test_metrics.json", tmp)).read_text())
    _, Xtr, Ytr = load_split(str(medium_store), "train", "av")
    want = svm.cv_scores(Xtr, Ytr, {"kernel": "linear", "C": 1.0}, 5, 0, 1_000_000)
    np.testing.assert_allclose(logged["val_scores_per_grid_point"][0], want, rtol=1e-9)


def test_mlflow_ui_lists_runs_with_their_stores(runs, store, tracking_env, browser, ray_head):
    """The runs table of the MLflow UI (headless Chromium), opened from a job's link: the training
    runs on one store and a baseline on another, each with its store in the Dataset column; the
    two stores' runs differ in their params."""
    from jobs import baselines
    assert baselines.main(["--features", str(store[0]), "--method", "random", "tracking.experiment=methods",
                           "tracking.run_name=random-on-small-store"]) == 0
    c = _client(tracking_env)
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


def _row(md: str, section: str, label: str) -> list[str]:
    """The cells of `label`'s row in the first table after the heading `section`."""
    part = md[md.index(section):]
    line = next(ln for ln in part.splitlines() if ln.startswith(f"| {label} |"))
    return [c.strip() for c in line.strip("|").split(" | ")]


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
    c = _client(tracking_env)
    metrics = c.get_run(runs["ctt-c"]["run_id"]).data.metrics
    assert f"{metrics['test_auprc_macro']:.3f}" in md and "0.624" in md        # ours beside the paper's
    assert md.count("| action |") == 2 and "0.813" in md                        # Table 4 with the paper's
    # every number is scikit-learn's on the run's logged predictions, at the run's thresholds
    for label, key in (("CTT-MMC-C", "ctt-c"), ("LSTM", "lstm"), ("CTT-MMC-S", "ctt-s")):
        rid = runs[key]["run_id"]
        _, y, probs = read_predictions(rid, "test")
        th = read_thresholds(rid)
        pred = (probs >= np.array([th[g] for g in GENRES])).astype(int)
        t3 = _row(md, "## Table 3", label)
        assert t3[2] == f"{average_precision_score(y[:, y.sum(0) > 0], probs[:, y.sum(0) > 0], average='macro'):.3f}"
        assert t3[4] == f"{average_precision_score(y, probs, average='micro'):.3f}"
        dec = _row(md, "## Decisions", label)
        assert dec[1] == "val F1-best"
        assert dec[2] == f"{precision_score(y, pred, average='micro', zero_division=0):.3f}"
        assert dec[4] == f"{f1_score(y, pred, average='micro', zero_division=0):.3f}"
        assert dec[6] == f"{f1_score(y, pred, average='samples', zero_division=0):.3f}"
        assert dec[7] == f"{accuracy_score(y, pred):.3f}"
        assert float(dec[8]) == pytest.approx(c.get_run(rid).data.metrics["test_ece"], abs=5e-4)
        head = [h.strip() for h in md[md.index("## F1, precision"):].splitlines()[2].strip("|").split(" | ")]
        assert _row(md, "## F1, precision", "action")[head.index(f"{label} F1")] == \
            f"{f1_score(y[:, 0], pred[:, 0], zero_division=0):.3f}"
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
        page.goto((tmp_path / "rep" / "report.html").as_uri(), wait_until="load")
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
    with pytest.raises(SystemExit) as bad:
        report.main(["--experiment", "methods", "--filter", "params.model.name ==== 'x'"])
    assert bad.value.code == 2 and "search expression" in capsys.readouterr().err


def test_probes_sit_beside_the_models_that_read_the_same_input(runs, medium_store, tracking_env, tmp_path, capsys):
    """--method probe on keyframes and on spectrograms: logged as probe-<input> runs, and the
    report's probe table sets CTT-MMC-C and CTT-MMC-S beside them, with paired-bootstrap
    intervals of the differences, flagged below only when an interval excludes 0."""
    from jobs import baselines, report
    ids = {}
    for what in ("frames", "spectrograms"):
        assert baselines.main(["--features", str(medium_store), "--method", "probe", "tracking.experiment=probes",
                               f"baseline.probe_input={what}"]) == 0
        out = capsys.readouterr().out
        ids[what] = _summary(out, "probe summary: ")["run_id"]
    c = _client(tracking_env)
    probe_runs = {w: c.get_run(r) for w, r in ids.items()}
    assert {w: r.data.tags["method"] for w, r in probe_runs.items()} == {"frames": "probe-frames",
                                                                      "spectrograms": "probe-spectrograms"}
    assert report.main(["--experiment", "methods", "--runs", runs["ctt-c"]["run_id"], runs["ctt-s"]["run_id"],
                        *ids.values(), "--output", str(tmp_path / "rep")]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    for label, model, what in (("CTT-MMC-C", "ctt-c", "frames"), ("CTT-MMC-S", "ctt-s", "spectrograms")):
        row = _row(md, "## Against the linear probe", label)
        mine = c.get_run(runs[model]["run_id"]).data.metrics["test_auprc_macro"]
        theirs = probe_runs[what].data.metrics["test_auprc_macro"]
        assert row[1] == "1" and row[3] == f"{mine:.3f}" and row[4] == f"{theirs:.3f}"
        (d, lo, hi), (_, mlo, mhi) = ([float(v) for v in re.findall(r"[-+]\d\.\d+", row[k])] for k in (5, 8))
        assert d == pytest.approx(mine - theirs, abs=2e-3) and lo <= d <= hi
        assert row[9] == ("**below its probe**" if hi < 0 or mhi < 0 else
                          "above its probe" if lo > 0 or mlo > 0 else "matches (within noise)")


def test_seeded_runs_repeat(runs, medium_store, tracking_env, tmp_path):
    """The same seed and config on CPU, two workers: the same losses, the same test scores."""
    a = runs["lstm"]
    b = _train(medium_store, "lstm", tmp_path, *LSTM)
    c = _client(tracking_env)
    hist = [[m.value for m in c.get_metric_history(s["run_id"], "train_loss")] for s in (a, b)]
    assert len(hist[0]) == 4 and hist[0] == pytest.approx(hist[1], rel=1e-5)
    assert a["test"]["test_auprc_micro"] == pytest.approx(b["test"]["test_auprc_micro"], rel=1e-6)


def test_killed_worker_resumes_from_checkpoint(medium_store, tracking_env, ray_head, tmp_path):
    """SIGKILL one Ray Train worker mid-run: the group restarts from the last checkpoint."""
    import os
    import signal

    from ray.util.state import list_actors
    c = _client(tracking_env)
    killed = {}

    errors: list[str] = []

    def killer():
        try:
            kill_when_four_epochs_logged()
        except Exception as e:       # reported by the assertion below, not lost with the thread
            errors.append(repr(e))

    def kill_when_four_epochs_logged():
        deadline = time.time() + 240
        while time.time() < deadline and not killed:
            exp = c.get_experiment_by_name("killtest")
            runs = c.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'") if exp else []
            for r in runs:
                if len(c.get_metric_history(r.info.run_id, "val_auprc_micro")) >= 4:
                    for a in list_actors(address=ray_head.gcs_address, raise_on_missing_output=False,
                                         filters=[("class_name", "=", "RayTrainWorker"), ("state", "=", "ALIVE")]):
                        os.kill(a.pid, signal.SIGKILL)
                        killed["pid"] = a.pid
                        break
            time.sleep(0.3)

    th = threading.Thread(target=killer, daemon=True)
    th.start()
    s = _train(medium_store, "ctt-c", tmp_path, "train.max_epochs=8", "train.patience=100",
               "train.checkpoint_every=2", "tracking.experiment=killtest")
    th.join(timeout=5)
    assert killed, f"no worker was killed {errors}"
    restored = c.get_metric_history(s["run_id"], "restored_from_epoch")
    assert restored and restored[0].value in (1, 3, 5)           # the last checkpoint before the kill
    assert s["epochs_trained"] == 8
    steps = [m.step for m in c.get_metric_history(s["run_id"], "train_loss")]
    assert max(steps) == 7 and set(range(8)) <= set(steps)     # epochs after the checkpoint are redone, not lost


def _summary(out: str, head: str) -> dict:
    import json
    return json.JSONDecoder().raw_decode(out[out.index(head) + len(head):])[0]


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
    c = _client(tracking_env)
    base = ["--features", str(medium_store), "--seeds", "2", "--experiment", "seeds", "resources.num_workers=1",
            "train.batch_size=16", "train.max_epochs=2", "train.checkpoint_every=2", f"tracking.storage_path={tmp_path}"]
    parents = {}
    assert train.main([*base, "--model", "ctt-c"]) == 0
    s = _summary(capsys.readouterr().out, "train summary: ")
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
    fused = _summary(capsys.readouterr().out, "fuse summary: ")
    for ch in fused["children"]:
        p = c.get_run(ch["run_id"]).data
        for role in ("visual_run", "audio_run"):                     # members of the same seed
            assert c.get_run(p.params[role]).data.tags["seed"] == str(ch["seed"]) == p.tags["seed"]
    assert report.main(["--experiment", "seeds", "--output", str(tmp_path / "rep")]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    for label, parent in (("CTT-MMC-C", parents["ctt-c"]), ("CTT-MMC-TN", fused["run_id"])):
        row = _row(md, "## Spread over seeds", label)
        kids = c.search_runs([c.get_experiment_by_name("seeds").experiment_id], f"tags.repeat_group = '{parent}'")
        micro = [average_precision_score(*read_predictions(k.info.run_id, "test")[1:], average="micro") for k in kids]
        assert row[1] == "2" and row[3] == f"{np.mean(micro):.3f} ± {np.std(micro):.3f}", (row, micro)
    assert "Within the spread on micro AU(PRC)" in md

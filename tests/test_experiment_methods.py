"""The scored methods against a real MLflow server and Ray head, on the trained runs of one
store: Two-Nets fusion, the SVM and random baselines, the linear probes beside the models."""
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from featurize.genres import GENRES
from tests.experiment_helpers import client, table_row, summary

pytestmark = pytest.mark.slow


def test_fuse_is_its_own_run(runs, tracking_env, medium_store, capsys):
    import mlflow

    from ctt.experiment.tracking.reading import read_predictions
    from featurize.store import read_table
    from jobs import fuse
    assert fuse.main(["--visual", runs["ctt-c"]["run_id"], "--audio", runs["ctt-s"]["run_id"],
                      "tracking.experiment=methods", "tracking.register_as=ctt-mmc-tn",
                      "tracking.register_alias=champion"]) == 0
    out = capsys.readouterr().out
    c = client(tracking_env)
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
    from ctt.experiment.classify import ModelNotFound, load_predictor
    assert load_predictor(run.info.run_id[:8]).visual_weight == w       # a run id as the report prints it
    with pytest.raises(ModelNotFound, match="no run at .* with an id starting '0000000'"):
        load_predictor("0000000")
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
    from featurize import store
    t = store.read_table(str(medium_store), columns=["trailer_id", "split"]).to_pandas()
    test_ids = t.trailer_id[t.split == "test"].tolist()
    assert len(test_ids) == 15                      # 12 samples, the mute trailer, 2 planted re-cuts
    c = client(tracking_env)
    exp = c.get_experiment_by_name("methods")
    for method in ("vllf", "av", "random"):
        run = c.search_runs([exp.experiment_id], f"tags.method = '{method}'")[0]
        assert 0 <= run.data.metrics["test_auprc_micro"] <= 1
        ids, y, probs = read_predictions(run.info.run_id, "test")
        assert sorted(ids) == sorted(test_ids) and np.all((probs >= 0) & (probs <= 1))
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
        ids[what] = summary(out, "probe summary: ")["run_id"]
    c = client(tracking_env)
    probe_runs = {w: c.get_run(r) for w, r in ids.items()}
    assert {w: r.data.tags["method"] for w, r in probe_runs.items()} == {"frames": "probe-frames",
                                                                      "spectrograms": "probe-spectrograms"}
    assert report.main(["--experiment", "methods", "--runs", runs["ctt-c"]["run_id"], runs["ctt-s"]["run_id"],
                        *ids.values(), "--output", str(tmp_path / "rep")]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    for label, model, what in (("CTT-MMC-C", "ctt-c", "frames"), ("CTT-MMC-S", "ctt-s", "spectrograms")):
        row = table_row(md, "## Against the linear probe", label)
        mine = c.get_run(runs[model]["run_id"]).data.metrics["test_auprc_macro"]
        theirs = probe_runs[what].data.metrics["test_auprc_macro"]
        assert row[1] == "1" and row[3] == f"{mine:.3f}" and row[4] == f"{theirs:.3f}"
        (d, lo, hi), (_, mlo, mhi) = ([float(v) for v in re.findall(r"[-+]\d\.\d+", row[k])] for k in (5, 8))
        assert d == pytest.approx(mine - theirs, abs=2e-3) and lo <= d <= hi
        assert row[9] == ("**below its probe**" if hi < 0 or mhi < 0 else
                          "above its probe" if lo > 0 or mlo > 0 else "matches (within noise)")

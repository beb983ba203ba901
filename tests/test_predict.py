"""Classify new trailers: a trained model, featurized inputs, thresholds, errors."""
import json
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from featurize.genres import GENRES

pytestmark = pytest.mark.slow


def _last_json(text: str) -> dict:
    start = text.rfind("\n{\n")
    return json.loads(text[start + 1:] if start >= 0 else text)


def test_predict_matches_stored_features_and_reports_errors(trained, samples, store, mlflow_server, tmp_path,
                                                            capsys, monkeypatch):
    import mlflow

    from ctt.experiment.classify import load_predictor
    from featurize.store import read_table
    from jobs import predict
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    assert trained["registered"] == {"name": "ctt-mmc-visual", "version": "1", "alias": "champion"}
    videos = sorted((samples / "videos").glob("synth*.mp4"))[:3]
    args = ["--model", "models:/ctt-mmc-visual@champion", *map(str, videos), str(samples / "videos" / "broken.mp4"),
            "--plot", str(tmp_path / "plots")]
    assert predict.main(args) == 0
    out = _last_json(capsys.readouterr().out)
    ids = [t["trailer_id"] for t in out["trailers"]]
    assert ids == [v.stem for v in videos]
    probs = np.array([[t["probabilities"][g] for g in GENRES] for t in out["trailers"]])
    assert probs.shape == (3, 9) and np.all((probs >= 0) & (probs <= 1))
    assert [e["trailer_id"] for e in out["errors"]] == ["broken"] and out["errors"][0]["stage"] == "decode"
    # the same numbers as the model on the training store's features of the same trailers
    table = read_table(str(store[0]))
    table = table.take([table.column("trailer_id").to_pylist().index(i) for i in ids])
    ref = load_predictor(trained["run_id"]).probabilities(table)
    np.testing.assert_allclose(probs, ref, atol=1e-5)
    # thresholds: chosen on val, stored with the run and the registry version, used for the genres
    client = mlflow.MlflowClient(mlflow_server.url)
    run_th = json.loads(Path(client.download_artifacts(trained["run_id"], "model/thresholds.json", str(tmp_path))).read_text())
    mv = client.get_model_version_by_alias("ctt-mmc-visual", "champion")
    assert json.loads(mv.tags["thresholds"]) == run_th == out["thresholds"]
    assert json.loads(mv.tags["featurizer"])["settings"]["feature_dim"] == 512
    times = dict(zip(table.column("trailer_id").to_pylist(), table.column("frame_times").to_pylist()))
    found = 0
    for t in out["trailers"]:
        assert t["genres"] == [g for g in GENRES if t["probabilities"][g] >= run_th[g]]
        # evidence: per predicted genre, keyframes of this trailer at their stored times
        assert sorted(t["evidence"]) == sorted(t["genres"])
        for g, ev in t["evidence"].items():
            shares = [e["share"] for e in ev]
            assert len(ev) <= 3 and shares == sorted(shares, reverse=True) and sum(shares) <= 1 + 1e-6
            found += len(ev)
            for e in ev:
                assert set(e) == {"time_s", "shot", "share"}
                assert e["time_s"] == pytest.approx(times[t["trailer_id"]][e["shot"] - 1], abs=1e-3)   # shots count from 1
    assert found > 0 or not any(t["genres"] for t in out["trailers"])
    assert sorted(Path(p).name for p in out["plots"]) == sorted(f"{v.stem}.png" for v in videos)
    with_shots = [t["trailer_id"] for t in out["trailers"] if any(t["evidence"].values())]
    assert sorted(Path(p).name for p in out["evidence_plots"]) == sorted(f"{i}_evidence.png" for i in with_shots)
    assert all(Path(p).read_bytes()[:4] == b"\x89PNG" for p in out["evidence_plots"])
    # the registered pyfunc model: the same probabilities from paths (featurized in this process,
    # no Ray) and from the store's precomputed features; the broken file is an error row
    model = mlflow.pyfunc.load_model("models:/ctt-mmc-visual@champion")
    paths = [str(v) for v in videos] + [str(samples / "videos" / "broken.mp4")]
    served = model.predict(pd.DataFrame({"trailer_id": ids + ["broken"], "path": paths}))
    assert list(served.columns) == ["trailer_id", *GENRES, "genres", "error"]
    np.testing.assert_allclose(served[list(GENRES)].to_numpy()[:3], probs, atol=1e-5)
    assert [list(g) for g in served.genres[:3]] == [t["genres"] for t in out["trailers"]]
    assert served.error[3].startswith("decode: ") and served[list(GENRES)].iloc[3].isna().all()
    frames = model.predict(pd.DataFrame({"frames": [np.asarray(f.as_py()).tolist() for f in table.column("frames")]}))
    np.testing.assert_allclose(frames[list(GENRES)].to_numpy(), probs, atol=1e-5)
    assert list(frames.trailer_id) == ["0", "1", "2"] and set(frames.error) == {""}


def test_mlflow_models_serve_answers_with_the_same_probabilities(trained, samples, mlflow_server, tmp_path,
                                                                 monkeypatch):
    import mlflow

    from cluster.local import start_model_server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    video = str(sorted((samples / "videos").glob("synth*.mp4"))[0])
    want = mlflow.pyfunc.load_model("models:/ctt-mmc-visual@champion").predict(
        pd.DataFrame({"trailer_id": ["t"], "path": [video]}))
    server = start_model_server(tmp_path, "models:/ctt-mmc-visual@champion", mlflow_server.url)
    try:
        body = json.dumps({"dataframe_records": [{"trailer_id": "t", "path": video}]}).encode()
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        req = urllib.request.Request(f"{server.url}/invocations", body, {"Content-Type": "application/json"})
        with opener.open(req, timeout=120) as r:
            got = json.loads(r.read())["predictions"]
    finally:
        server.stop()
    assert len(got) == 1 and got[0]["trailer_id"] == "t" and got[0]["error"] == ""
    np.testing.assert_allclose([got[0][g] for g in GENRES], want[list(GENRES)].to_numpy()[0], atol=1e-6)
    assert got[0]["genres"] == list(want.genres[0])


def test_predict_threshold_override_and_run_id(trained, samples, mlflow_server, capsys, monkeypatch):
    from jobs import predict
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    video = sorted((samples / "videos").glob("synth*.mp4"))[0]
    assert predict.main(["--model", trained["run_id"], str(video), "--threshold", "0.0"]) == 0
    out = _last_json(capsys.readouterr().out)
    assert set(out["thresholds"].values()) == {0.0} and out["trailers"][0]["genres"] == list(GENRES)


def test_predict_with_no_readable_input_lists_every_input_in_errors(trained, samples, mlflow_server, capsys,
                                                                   monkeypatch, tmp_path):
    from jobs import predict
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    (tmp_path / "notes.mp4").write_text("not a video")
    assert predict.main(["--model", trained["run_id"], str(samples / "videos" / "broken.mp4"),
                         str(tmp_path / "notes.mp4")]) == 1
    out = _last_json(capsys.readouterr().out)
    assert out["trailers"] == [] and sorted(e["trailer_id"] for e in out["errors"]) == ["broken", "notes"]
    assert {e["stage"] for e in out["errors"]} == {"decode"}


def test_predict_unknown_model_is_a_clear_error(mlflow_server, samples, capsys, monkeypatch):
    from jobs import predict
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    with pytest.raises(SystemExit) as e:
        predict.main(["--model", "models:/no-such-model/3", str(samples / "videos" / "broken.mp4")])
    assert e.value.code == 2 and "no model 'models:/no-such-model/3'" in capsys.readouterr().err   # a usage error
    with pytest.raises(SystemExit) as e:
        predict.main(["--model", "abcdef12", str(samples / "videos" / "broken.mp4")])        # a run-id prefix
    assert e.value.code == 2 and "with an id starting 'abcdef12'" in capsys.readouterr().err

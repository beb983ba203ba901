"""Classify new trailers: a trained model, featurized inputs, thresholds, errors."""
import json
from pathlib import Path

import numpy as np
import pytest

from featurize.genres import GENRES

pytestmark = pytest.mark.slow


def _last_json(text: str) -> dict:
    start = text.rfind("\n{\n")
    return json.loads(text[start + 1:] if start >= 0 else text)


def test_predict_matches_stored_features_and_reports_errors(trained, samples, store, mlflow_server, tmp_path,
                                                            capsys, monkeypatch):
    import mlflow

    from ctt.predict import load_predictor
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
    for t in out["trailers"]:
        assert t["genres"] == [g for g in GENRES if t["probabilities"][g] >= run_th[g]]
    assert sorted(Path(p).name for p in out["plots"]) == sorted(f"{v.stem}.png" for v in videos)


def test_predict_threshold_override_and_run_id(trained, samples, mlflow_server, capsys, monkeypatch):
    from jobs import predict
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    video = sorted((samples / "videos").glob("synth*.mp4"))[0]
    assert predict.main(["--model", trained["run_id"], str(video), "--threshold", "0.0"]) == 0
    out = _last_json(capsys.readouterr().out)
    assert set(out["thresholds"].values()) == {0.0} and out["trailers"][0]["genres"] == list(GENRES)


def test_predict_unknown_model_is_a_clear_error(mlflow_server, samples, capsys, monkeypatch):
    from jobs import predict
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    with pytest.raises(SystemExit) as e:
        predict.main(["--model", "models:/no-such-model/3", str(samples / "videos" / "broken.mp4")])
    assert e.value.code == 1 and "no model 'models:/no-such-model/3'" in capsys.readouterr().err

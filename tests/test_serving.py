"""The servable model without servers: a trailer scores the same alone or in any batch, the
bundle round-trips, the pyfunc contract on precomputed features (fused, audio-only, bad
input), and a logged model loads back through MLflow's pyfunc loader (local store)."""
import json

import numpy as np
import pandas as pd
import pytest

from ctt.config import load_config
from ctt.models import build_model
from ctt.predictor import Predictor, load_bundle, member, table_from_features
from featurize.audio import SPEC_SIZE
from featurize.genres import GENRES

DIM = 16


def _predictor(kinds=("visual", "audio"), weight=0.7) -> Predictor:
    members = {}
    for kind in kinds:
        cfg = load_config(None, [f"model.name={'ctt-c' if kind == 'visual' else 'ctt-s'}", "model.parts=3",
                                 "model.test_draws=4"])
        members[kind] = member(build_model(cfg.model, DIM), cfg, DIM, {"settings": {"feature_dim": DIM}}, f"run-{kind}")
    return Predictor("test", members, weight, {g: 0.5 for g in GENRES})


def _features(n: int, rng: np.random.Generator):
    frames = [rng.random((rng.integers(1, 6), DIM)).astype(np.float32) for _ in range(n)]
    specs = [rng.random((rng.integers(1, 5), SPEC_SIZE)).astype(np.float16) for _ in range(n)]
    specs[0] = None                                       # a trailer without sound
    return frames, specs


def test_a_trailer_scores_the_same_alone_and_in_any_batch():
    p = _predictor(("audio",))
    frames, specs = _features(5, np.random.default_rng(0))
    ids = [f"t{i}" for i in range(5)]
    together = p.probabilities(table_from_features(ids, frames, specs, DIM))
    alone = np.concatenate([p.probabilities(table_from_features(ids[i:i + 1], frames[i:i + 1], specs[i:i + 1], DIM))
                            for i in range(5)])
    reversed_ = p.probabilities(table_from_features(ids[::-1], frames[::-1], specs[::-1], DIM))[::-1]
    assert np.isnan(together[0]).all() and not np.isnan(together[1:]).any()
    np.testing.assert_allclose(together, alone, atol=1e-6)
    np.testing.assert_allclose(together, reversed_, atol=1e-6)


def test_bundle_round_trip_and_pyfunc_contract(tmp_path):
    from ctt.serving import Served, score_frame
    p = _predictor()
    q = load_bundle(p.save(tmp_path / "bundle"))
    assert q.visual_weight == 0.7 and q.thresholds == p.thresholds and set(q.members) == {"visual", "audio"}
    assert q.members["audio"].run_id == "run-audio" and q.feature_dim == DIM
    frames, specs = _features(4, np.random.default_rng(1))
    table = table_from_features(list("abcd"), frames, specs, DIM)
    np.testing.assert_allclose(q.probabilities(table), p.probabilities(table), atol=1e-6)
    gm = Served(q)
    out = score_frame(gm, pd.DataFrame({"trailer_id": list("abcd"), "frames": [f.tolist() for f in frames],
                                        "spectrograms": specs}))
    visual = p.members["visual"].scorer.where_readable(table)
    audio = p.members["audio"].scorer.where_readable(table)
    np.testing.assert_allclose(out[list(GENRES)].to_numpy()[0], visual[0], atol=1e-6)      # no sound: visual
    np.testing.assert_allclose(out[list(GENRES)].to_numpy()[1:], 0.7 * visual[1:] + 0.3 * audio[1:], atol=1e-6)
    assert list(out.genres[1]) == [g for g in GENRES if out[g][1] >= 0.5] and set(out.error) == {""}
    gm.predictor = _predictor(("audio",))
    lone = score_frame(gm, pd.DataFrame({"frames": [f.tolist() for f in frames[:2]], "spectrograms": specs[:2]}))
    assert lone.error[0].startswith("no input this model can read") and lone.error[1] == ""
    with pytest.raises(ValueError, match="frames: each item must have 16 values"):
        score_frame(gm, pd.DataFrame({"frames": [np.zeros((2, 8)).tolist()]}))
    with pytest.raises(ValueError, match="non-finite"):
        score_frame(gm, pd.DataFrame({"spectrograms": [np.full((1, SPEC_SIZE), np.nan)]}))


def test_logged_model_loads_through_pyfunc(tmp_path, monkeypatch):
    import mlflow

    from ctt import serving
    from ctt.experiment.tracking import connection, model_package
    from ctt.predictor import NotAGenreModel
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    p = _predictor(("visual",))
    connection.connect("serving-unit")
    with mlflow.start_run() as run:
        uri = model_package.log_servable(p)
    for ref in (run.info.run_id, f"runs:/{run.info.run_id}", uri):
        assert serving.model_uri(ref).endswith("/model") or ref == uri
        q = model_package.load_servable(ref)
        assert q.members["visual"].run_id == "run-visual" and q.source == ref
    frames, _ = _features(3, np.random.default_rng(2))
    out = mlflow.pyfunc.load_model(uri).predict(pd.DataFrame({"frames": [f.tolist() for f in frames]}))
    ref = p.probabilities(table_from_features(["0", "1", "2"], frames, [None] * 3, DIM))
    np.testing.assert_allclose(out[list(GENRES)].to_numpy(), ref, atol=1e-6)
    assert "evidence" not in out
    # the evidence of jobs/predict.py, from the served model when asked for
    lo = {g: 0.0 for g in GENRES}                              # every genre predicted: evidence for each
    p.thresholds = lo
    with mlflow.start_run():
        uri = model_package.log_servable(p)
    got = mlflow.pyfunc.load_model(uri).predict(pd.DataFrame({"frames": [f.tolist() for f in frames]}),
                                                params={"evidence": True})
    table = table_from_features(["0", "1", "2"], frames, [None] * 3, DIM)
    want = p.evidence(table, p.probabilities(table), lo)
    assert [json.loads(e) for e in got["evidence"]] == want
    assert all(set(ev) - {"why"} == set(GENRES) for ev in want) and any(ev["action"] for ev in want)
    with pytest.raises(NotAGenreModel):
        model_package.load_servable(str(tmp_path))

"""The linear probe and the log-spectrogram option: pooled columns against NumPy, the C
choice against scikit-learn's cross-validation, and log1p applied where the option says."""
import numpy as np
import pytest
import torch

from ctt import linear_probe
from featurize import store
from featurize.audio import BINS, FRAMES, SPEC_SIZE
from featurize.genres import GENRES


def _rows(rng, n=40, dim=6):
    rows = []
    for i in range(n):
        g = GENRES[(i // 3) % 3]
        frames = rng.normal(size=(int(rng.integers(1, 5)), dim)).astype(np.float32) + (2.0 if g == "action" else 0.0)
        spec = (rng.random((int(rng.integers(0, 3)), SPEC_SIZE)) * (5.0 if g == "comedy" else 1.0)).astype(np.float16)
        rows.append(store.trailer_row(dim, trailer_id=f"t{i:02d}", split=("train", "val", "test")[i % 3 if i > 5 else 0],
                                      genres=[g], frames=frames, spectrograms=spec, has_audio=len(spec) > 0))
    return rows


def test_pooled_columns_equal_numpy():
    rng = np.random.default_rng(0)
    rows = _rows(rng, 8)
    t = store.features_table(rows, 6)
    got = linear_probe.pool_frames(t)
    for r, g in zip(rows, got):
        np.testing.assert_allclose(g, np.concatenate([r["frames"].mean(0), r["frames"].max(0)]), rtol=1e-6)
    spec = linear_probe.pool_spectrograms(t)
    for r, g in zip(rows, spec):
        if not len(r["spectrograms"]):
            assert np.isnan(g).all()
            continue
        x = np.log1p(r["spectrograms"].astype(np.float32).reshape(-1, BINS))
        np.testing.assert_allclose(g, np.concatenate([x.mean(0), x.std(0)]), rtol=1e-4, atol=1e-6)


def test_probe_chooses_c_by_cross_validation_and_separates_an_easy_genre(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    rng = np.random.default_rng(1)
    out = str(tmp_path / "s")
    store.claim(out, {"feature_dim": 6})
    store.write_atomic(store.features_table(_rows(rng, 90), 6), out)
    ids, Xtr, Ytr = linear_probe.load(out, "train", "frames")
    assert ids == sorted(ids) and Xtr.shape == (len(ids), 12)
    _, Xte, Yte = linear_probe.load(out, "test", "frames")
    (pte,), chosen = linear_probe.fit_predict(Xtr, Ytr, [Xte], seed=0)
    a = GENRES.index("action")
    assert average_precision_score(Yte[:, a], pte[:, a]) > 0.9           # keyframes shifted by +2: easy
    from sklearn.preprocessing import StandardScaler
    Xs = StandardScaler().fit_transform(Xtr)
    y = Ytr[:, a].astype(int)
    cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    ref = [np.mean(cross_val_score(LogisticRegression(C=c, max_iter=2000), Xs, y, cv=cv, scoring="average_precision"))
           for c in linear_probe.CS]
    assert chosen[a] == (linear_probe.CS[int(np.argmax(ref))], pytest.approx(max(ref)))
    assert np.isnan(chosen[GENRES.index("thriller")][1])             # no positive: nothing to choose
    _, Xa, _ = linear_probe.load(out, "train", "spectrograms")              # only trailers with audio
    assert Xa.shape[1] == 2 * BINS and np.isfinite(Xa).all()
    _, Xb, _ = linear_probe.load(out, "train", "both")
    assert Xb.shape == (len(ids), 12 + 2 * BINS)


def test_log_spectrogram_option_compresses_before_the_mean_and_norm(tmp_path):
    from ctt.config import ModelConfig
    from ctt.data import mean_spectrogram
    from ctt.models import build_model
    torch.manual_seed(0)
    mag = build_model(ModelConfig(name="ctt-s", n=8), 0).eval()
    log = build_model(ModelConfig(name="ctt-s", n=8, spectrogram="log"), 0).eval()
    log.load_state_dict(mag.state_dict())
    x = torch.rand(2, 3, FRAMES, BINS) * 100
    torch.testing.assert_close(log(x), mag(torch.log1p(x)))
    rows = [store.trailer_row(1, trailer_id="a", split="train", has_audio=True,
                              spectrograms=np.full((2, SPEC_SIZE), 3.0, np.float16))]
    out = str(tmp_path / "s")
    store.claim(out, {"feature_dim": 1})
    store.write_atomic(store.features_table(rows, 1), out)
    assert mean_spectrogram(out, log=True) == pytest.approx(np.full((FRAMES, BINS), np.log1p(3.0)), rel=1e-6)
    assert mean_spectrogram(out) == pytest.approx(np.full((FRAMES, BINS), 3.0))


def test_standardize_option_z_scores_keyframes_with_train_statistics(tmp_path):
    from ctt.config import ModelConfig
    from ctt.data import frame_stats, input_stats
    from ctt.models import build_model, set_input_stats
    rng = np.random.default_rng(2)
    rows = _rows(rng, 30)
    for r in rows:                                       # dimensions on very different scales
        r["frames"] = r["frames"] * np.array([1e-2, 1, 10, 100, 1, 1e3], np.float32)
    rows[7]["frames"][:, 4] = 0.5
    for r in rows:
        if r["split"] == "train":
            r["frames"][:, 4] = 0.5                      # constant on train
    out = str(tmp_path / "s")
    store.claim(out, {"feature_dim": 6})
    store.write_atomic(store.features_table(rows, 6), out)
    train = np.concatenate([r["frames"] for r in rows if r["split"] == "train"]).astype(np.float64)
    mean, std = frame_stats(out)
    np.testing.assert_allclose(mean, train.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std[[0, 1, 2, 3, 5]], train.std(0)[[0, 1, 2, 3, 5]], rtol=1e-4)
    assert std[4] == 1.0                                 # constant on train: only centred
    for name in ("ctt-c", "lstm"):
        cfg = ModelConfig(name=name, n=4, hidden=4, standardize=True)
        stats = input_stats(out, cfg)
        assert set(stats) == {"input_norm.mean", "input_norm.std"}
        torch.manual_seed(0)
        model = build_model(cfg, 6).eval()
        set_input_stats(model, stats)
        raw = build_model(ModelConfig(name=name, n=4, hidden=4), 6).eval()
        raw.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("input_norm.")})
        x = torch.from_numpy(rng.normal(size=(2, 5, 6)).astype(np.float32)) * torch.from_numpy(std) + torch.from_numpy(mean)
        lengths = torch.tensor([5, 3])
        z = (x - torch.from_numpy(mean)) / torch.from_numpy(std)
        z[1, 3:] = 0                                     # padding stays 0
        torch.testing.assert_close(model(x, lengths), raw(z, lengths))
        # the statistics are in the state dict, so a served model normalises as training did
        again = build_model(cfg, 6)
        again.load_state_dict(model.state_dict())
        torch.testing.assert_close(again.eval()(x, lengths), model(x, lengths))
    assert input_stats(out, ModelConfig(name="ctt-c")) == {}


def test_probe_reads_the_svm_vectors_as_they_are(tmp_path):
    rng = np.random.default_rng(3)
    rows = _rows(rng, 20)
    for r in rows:
        r["av"] = rng.normal(size=4).astype(np.float32)
    out = str(tmp_path / "s")
    store.claim(out, {"feature_dim": 6})
    store.write_atomic(store.features_table(rows, 6), out)
    ids, X, _ = linear_probe.load(out, "train", "av")
    by_id = {r["trailer_id"]: r["av"] for r in rows}
    np.testing.assert_allclose(X, np.stack([by_id[i] for i in ids]), rtol=1e-6)
    assert len(ids) == sum(r["split"] == "train" for r in rows)

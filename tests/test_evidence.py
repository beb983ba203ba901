"""Which shots made the call: gradient x input attributions of the CTT models."""
import numpy as np
import pytest
import torch

from ctt.config import ModelConfig
from ctt.evidence import input_attributions, top_evidence
from ctt.models import VisualCTT, build_model
from featurize.genres import GENRES


def test_attributions_add_up_to_the_logit_less_its_biases():
    """CTT + linear head is piecewise linear and its conv bias is the same at every position
    (so it never changes where the max over time falls): the per-keyframe terms sum exactly
    to each logit of the same network with its biases set to zero."""
    torch.manual_seed(0)
    x = torch.randn(3, 7, 16)
    x[1, 5:], x[2, 2:] = 0, 0                                   # zero padding, as batches hold it
    lengths = torch.tensor([7, 5, 2])
    for head in ("linear", "maxout"):
        net = VisualCTT(m=16, n=8, f=3, head=head, hidden=6).eval()
        a = input_attributions(net, {"x": x, "lengths": lengths})
        assert a.shape == (3, 7, len(GENRES)) and np.isfinite(a).all()
        assert np.abs(a[1, 5:]).max() == 0 and np.abs(a[2, 2:]).max() == 0      # padding has no say
        if head == "linear":
            with torch.no_grad():
                for p in net.parameters():
                    if p.dim() == 1:
                        p.zero_()
                nobias = net(x, lengths)
            np.testing.assert_allclose(a.sum(1), nobias.numpy(), rtol=1e-4, atol=1e-4)


def test_the_planted_shot_is_the_top_evidence():
    """A filter that fires on one feature direction, a head that reads it for action: the
    keyframe carrying the direction gets (nearly) all of action's evidence."""
    net = VisualCTT(m=4, n=2, f=1, head="linear").eval()
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.ctt.conv.weight[0, 0, 0] = 1.0                 # filter 0 <- feature 0
        net.ctt.conv.weight[1, 1, 0] = 1.0
        net.head[1].weight[GENRES.index("action"), 0] = 2.0
    x = torch.full((1, 6, 4), 0.1)
    x[0, 3, 0] = 5.0                                       # the planted shot
    a = input_attributions(net, {"x": x, "lengths": torch.tensor([6])})[0]
    ev = top_evidence(a[:, GENRES.index("action")], np.arange(6) * 2.5, "shot")
    assert ev[0] == {"time_s": 7.5, "shot": 4, "share": 1.0}                # the 4th keyframe: shots count from 1
    assert top_evidence(np.array([-1.0, 0.0]), np.zeros(2), "shot") == []     # nothing positive: no evidence


def test_audio_attributions_land_on_the_drawn_windows():
    from ctt.evaluation import Scorer
    from featurize import store
    from featurize.audio import SPEC_SIZE
    torch.manual_seed(1)
    cfg = ModelConfig(name="ctt-s", n=4, parts=3, test_draws=2)
    scorer = Scorer(build_model(cfg, 0), cfg, seed=0)
    rows = [store.trailer_row(1, trailer_id=f"t{i}", has_audio=True,
                              spectrograms=np.random.default_rng(i).random((n, SPEC_SIZE)).astype(np.float16))
            for i, n in enumerate((5, 1))]
    t = store.features_table(rows, 1)
    a = scorer.attributions(t)
    assert [x.shape for x in a] == [(5, len(GENRES)), (1, len(GENRES))]
    assert np.isfinite(a[0]).all() and np.abs(a[1]).sum() > 0


def test_a_fused_model_weighs_its_members_evidence():
    from ctt.config import Config
    from ctt.predictor import Predictor, member
    from featurize import store
    from featurize.audio import SPEC_SIZE
    torch.manual_seed(2)
    vis, aud = Config(), Config()
    vis.model, aud.model = ModelConfig(name="ctt-c", n=4, hidden=4), ModelConfig(name="ctt-s", n=4, parts=2, test_draws=1)
    members = {"visual": member(build_model(vis.model, 8), vis, 8, {}, "v"),
               "audio": member(build_model(aud.model, 0), aud, 0, {}, "a")}
    pred = Predictor("fused", members, 0.7, {})
    rng = np.random.default_rng(0)
    rows = [store.trailer_row(8, trailer_id="both", has_audio=True, frames=rng.normal(size=(4, 8)).astype(np.float32),
                              frame_times=np.array([0.5, 2.0, 4.0, 6.5], np.float32),
                              spectrograms=rng.random((3, SPEC_SIZE)).astype(np.float16)),
            store.trailer_row(8, trailer_id="mute", frames=rng.normal(size=(3, 8)).astype(np.float32),
                              frame_times=np.array([1.0, 3.0, 5.0], np.float32)),
            store.trailer_row(8, trailer_id="one", frames=np.zeros((1, 8), np.float32),    # one blank keyframe
                              frame_times=np.array([2.0], np.float32)),
            store.trailer_row(8, trailer_id="blank", frames=np.zeros((3, 8), np.float32),
                              frame_times=np.array([1.0, 3.0, 5.0], np.float32))]
    t = store.features_table(rows, 8)
    probs = pred.probabilities(t)
    ev = pred.evidence(t, probs, {g: 0.0 for g in GENRES}, k=10)      # every genre predicted
    assert sorted(set(ev[0]) - {"why"}) == sorted(GENRES) == sorted(set(ev[1]) - {"why"})
    kinds = set()
    for g in GENRES:
        kinds |= {k for e in ev[0][g] for k in ("shot", "window") if k in e}
        shots = sum(e["share"] for e in ev[0][g] if "shot" in e)
        windows = sum(e["share"] for e in ev[0][g] if "window" in e)
        assert shots <= 0.7 + 1e-3 and windows <= 0.3 + 1e-3
        assert all(e["time_s"] in (0.0, 3.0, 6.0) for e in ev[0][g] if "window" in e)
        assert all("shot" in e for e in ev[1][g])                   # no audio: the visual member alone
        assert sum(e["share"] for e in ev[1][g]) in (0.0, pytest.approx(1.0, abs=1e-3))
        assert all(e["time_s"] == [1.0, 3.0, 5.0][e["shot"] - 1] for e in ev[1][g])      # shots count from 1
    assert kinds == {"shot", "window"}                              # both members speak for some genre
    # no evidence: every predicted genre says why (blank keyframes attribute nothing)
    assert all(ev[2][g] == [] and "one shot" in ev[2]["why"][g] for g in GENRES)
    assert all(ev[3][g] == [] and "no shot or window raised" in ev[3]["why"][g] for g in GENRES)


def test_after_training_the_planted_shot_is_the_top_evidence():
    """Generated trailers at the feature level: each of a trailer's genres is carried by one
    keyframe (the genre's cue direction added to it), every other keyframe is neutral noise.
    After CTT-MMC-C is trained on them, the cue keyframe is the top evidence of its genre on
    held-out trailers far above chance (one in t)."""
    from ctt.config import TrainConfig
    from benchmarks.train_speed import prebuilt_batches
    from ctt.training import fit, seed_everything
    seed_everything(0)
    rng = np.random.default_rng(0)
    dim = 64
    cues = rng.normal(size=(len(GENRES), dim))
    cues *= 5.0 / np.linalg.norm(cues, axis=1, keepdims=True)       # noise keyframes have norm about 8

    def trailers(n):
        rows, planted = [], []
        for i in range(n):
            t = int(rng.integers(8, 17))
            x = rng.normal(size=(t, dim)).astype(np.float32)
            genres = rng.choice(len(GENRES), int(rng.integers(1, 4)), replace=False)
            at = rng.choice(t, len(genres), replace=False)
            x[at] += cues[genres]
            rows.append({"frames": x, "genres": [GENRES[g] for g in genres]})
            planted.append(dict(zip(genres.tolist(), at.tolist())))
        return rows, planted
    train, _ = trailers(480)
    val, _ = trailers(96)
    test, planted = trailers(96)
    cfg = ModelConfig(name="ctt-c")
    model = build_model(cfg, dim)
    dev = torch.device("cpu")
    tb, vb = prebuilt_batches(train, cfg, 64, dev), prebuilt_batches(val, cfg, 64, dev)
    state = fit(model, lambda: tb, lambda: vb, TrainConfig(max_epochs=25, patience=25))
    model.load_state_dict(state.best_state)
    hits, chance, n = 0, 0.0, 0
    for batch, start in zip(prebuilt_batches(test, cfg, 64, dev), range(0, len(test), 64)):
        attr = input_attributions(model, batch)
        for j in range(len(batch["x"])):
            t = int(batch["lengths"][j])
            for g, at in planted[start + j].items():
                hits += int(np.argmax(attr[j, :t, g]) == at)
                chance += 1 / t
                n += 1
    rate, chance = hits / n, chance / n
    print(f"planted keyframe top evidence: {rate:.3f} of {n} (chance {chance:.3f})")
    assert rate > 0.8 and rate > 8 * chance

"""Which shots made the call: gradient x input attributions of the CTT models."""
import numpy as np
import pyarrow as pa
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
    assert ev[0] == {"time_s": 7.5, "shot": 3, "share": 1.0}
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

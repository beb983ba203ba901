import pytest
import torch

from ctt.config import ModelConfig
from ctt.layers import CTT, Maxout
from ctt.models import build_model, num_params
from tests.test_ctt_models import padded


@pytest.mark.parametrize("length", [1, 2, 3, 4, 17])
@pytest.mark.parametrize("f", [3, 5, 7])
def test_ctt_output_shape(length, f):
    ctt = CTT(m=32, n=16, f=f)
    out = ctt(torch.randn(4, length, 32), torch.full((4,), length))
    assert out.shape == (4, 16)
    assert torch.isfinite(out).all()


def test_ctt_is_conv_then_max_over_time():
    torch.manual_seed(0)
    ctt = CTT(m=5, n=3, f=3)
    x = torch.randn(1, 8, 5)
    W, b = ctt.conv.weight, ctt.conv.bias          # (n, m, f)
    ref = torch.stack([torch.stack([(W[k] * x[0, t:t + 3].T).sum() + b[k] for t in range(6)]).max()
                       for k in range(3)])
    torch.testing.assert_close(ctt(x)[0], ref)


def test_padding_does_not_change_a_trailer():
    torch.manual_seed(0)
    ctt = CTT(m=8, n=4, f=3).eval()
    seqs = [torch.randn(n, 8) for n in (1, 2, 5, 9)]
    out = ctt(*padded(seqs))
    for i, s in enumerate(seqs):
        torch.testing.assert_close(out[i], ctt(s[None], torch.tensor([len(s)]))[0])


def test_maxout_is_max_of_two_affine_maps():
    mo = Maxout(6, 4)
    x = torch.randn(3, 6)
    z = mo.linear(x).view(3, 2, 4)
    torch.testing.assert_close(mo(x), torch.maximum(z[:, 0], z[:, 1]))


def test_ctt_c_parameter_count_in_paper_range():
    n = num_params(build_model(ModelConfig(name="ctt-c"), feature_dim=2048))
    assert 1.6e6 <= n <= 1.9e6, n      # paper: about 1.8M

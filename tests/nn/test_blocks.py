"""Building blocks: fast Hadamard transform, channel padding, ZeroReLU, gates."""

import pytest
import torch

from detinit.init import hadamard
from detinit.nn import (
    ChannelPad,
    HadamardTransform,
    ScalarBias,
    ScalarGate,
    ZeroReLU,
    fwht,
    make_relu,
    power_of_two_blocks,
)


@pytest.mark.parametrize("channels", [1, 2, 16, 64, 512, 4096])
def test_fwht_matches_dense_normalised_hadamard(channels):
    x = torch.randn(3, channels, 2, 2, dtype=torch.float64)
    dense = hadamard(channels, dtype=torch.float64, normalized=True)
    torch.testing.assert_close(HadamardTransform(channels)(x), torch.einsum("ij,bjhw->bihw", dense, x))


@pytest.mark.parametrize("channels", [3, 6, 96, 100, 640])
def test_non_power_of_two_is_block_diagonal_orthogonal_and_self_inverse(channels):
    t = HadamardTransform(channels)
    m = t.matrix()
    expected = torch.block_diag(
        *[hadamard(b, dtype=torch.float64, normalized=True) for b in power_of_two_blocks(channels)]
    )
    torch.testing.assert_close(m, expected)
    torch.testing.assert_close(m @ m.T, torch.eye(channels, dtype=torch.float64))
    x = torch.randn(2, channels, 3, dtype=torch.float64)
    torch.testing.assert_close(t(t(x)), x)


def test_backward_is_the_transform_and_no_parameters():
    t = HadamardTransform(32)
    assert list(t.parameters()) == [] and list(t.buffers()) == []
    x = torch.randn(2, 32, 4, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 32, 4, 4, dtype=torch.float64)
    (t(x) * w).sum().backward()
    torch.testing.assert_close(x.grad, t(w))  # H symmetric: backward applies H again
    assert torch.autograd.gradcheck(
        lambda z: fwht(z, dim=1), (torch.randn(2, 8, 3, dtype=torch.float64, requires_grad=True),)
    )


def test_fwht_other_dims_and_errors():
    x = torch.randn(4, 5, 8, dtype=torch.float64)
    torch.testing.assert_close(fwht(x, dim=-1, normalized=False), x @ hadamard(8, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"expected input \(N, 16, \.\.\.\), got shape \(2, 8, 4, 4\)"):
        HadamardTransform(16)(torch.zeros(2, 8, 4, 4))
    with pytest.raises(ValueError, match="channels=0 is not supported; channels must be an int >= 1"):
        HadamardTransform(0)
    with pytest.raises(TypeError, match="int64"):
        fwht(torch.zeros(2, 4, dtype=torch.int64))
    assert power_of_two_blocks(96) == [64, 32] and sum(power_of_two_blocks(1000)) == 1000


def test_channel_pad():
    x = torch.randn(2, 3, 8, 8)
    y = ChannelPad(3, 16, stride=2)(x)
    assert y.shape == (2, 16, 4, 4)
    assert torch.equal(y[:, :3], x[:, :, ::2, ::2]) and not y[:, 3:].any()
    with pytest.raises(ValueError, match="in_channels=8, out_channels=4"):
        ChannelPad(8, 4)


def test_zero_relu_gradient_at_zero_and_make_relu():
    x = torch.tensor([-2.0, 0.0, 0.0, 3.0], requires_grad=True)
    ZeroReLU()(x).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0]
    x.grad = None
    make_relu("torch")(x).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0, 1.0]
    assert torch.equal(ZeroReLU()(x), torch.relu(x))
    with pytest.raises(ValueError, match=r"make_relu: kind \(a model's relu=\) 'gelu' is not supported"):
        make_relu("gelu")


def test_gates_forward():
    g, b = ScalarGate(), ScalarBias()
    x = torch.randn(3)
    assert torch.equal(g(x), x) and torch.equal(b(x), x)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_hadamard_transform_on_cuda_matches_cpu():
    x = torch.randn(2, 96, 4, 4, dtype=torch.float64, requires_grad=True)
    xc = x.detach().cuda().requires_grad_()
    t = HadamardTransform(96)
    torch.testing.assert_close(t(xc).cpu(), t(x))
    t(xc).sum().backward()
    t(x).sum().backward()
    torch.testing.assert_close(xc.grad.cpu(), x.grad)

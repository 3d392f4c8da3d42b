"""Random baselines: distributions, fans, explicit generators, no global RNG."""

import math

import pytest
import torch

from detinit.init import fans, kaiming_normal_, kaiming_uniform_, normal_, orthogonal_, xavier_normal_, xavier_uniform_


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_fans_per_group_and_transposed():
    assert fans(torch.empty(64, 32)) == (32, 64)
    assert fans(torch.empty(64, 8, 3, 3), groups=4) == (72, 144)
    assert fans(torch.empty(32, 16, 3, 3), transposed=True) == (288, 144)
    assert fans(torch.empty(32, 1, 3, 3), groups=32) == (9, 9)  # depthwise


@pytest.mark.parametrize(
    "fn,expected_var",
    [
        (lambda w: kaiming_normal_(w, generator=gen()), 2 / 576),
        (lambda w: kaiming_uniform_(w, generator=gen()), 2 / 576),
        (lambda w: kaiming_normal_(w, generator=gen(), mode="fan_out"), 2 / 1152),
        (lambda w: kaiming_normal_(w, generator=gen(), nonlinearity="linear"), 1 / 576),
        (lambda w: xavier_normal_(w, generator=gen()), 2 / (576 + 1152)),
        (lambda w: xavier_uniform_(w, generator=gen()), 2 / (576 + 1152)),
    ],
)
def test_variances(fn, expected_var):
    w = fn(torch.empty(128, 64, 3, 3, dtype=torch.float64))
    assert math.isclose(w.var().item(), expected_var, rel_tol=0.03)


def test_orthogonal_and_normal():
    w = orthogonal_(torch.empty(64, 32, 3, 3, dtype=torch.float64), generator=gen())
    flat = w.reshape(64, -1)
    torch.testing.assert_close(flat @ flat.T, torch.eye(64, dtype=torch.float64))
    h = orthogonal_(torch.empty(16, 16, dtype=torch.bfloat16), generator=gen())
    assert h.dtype == torch.bfloat16
    assert math.isclose(
        normal_(torch.empty(100_000, dtype=torch.float64), generator=gen()).std().item(), 1, rel_tol=0.02
    )


@pytest.mark.parametrize("fn", [kaiming_normal_, kaiming_uniform_, xavier_normal_, xavier_uniform_, orthogonal_])
def test_seeded_reproducible_and_global_rng_untouched(fn):
    state = torch.random.get_rng_state()
    a = fn(torch.empty(32, 16), generator=gen(3))
    b = fn(torch.empty(32, 16), generator=gen(3))
    c = fn(torch.empty(32, 16), generator=gen(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(state, torch.random.get_rng_state())


def test_generator_is_required_and_checked():
    with pytest.raises(TypeError):
        kaiming_normal_(torch.empty(4, 4))  # keyword-only, no default
    with pytest.raises(TypeError, match="torch.Generator"):
        kaiming_normal_(torch.empty(4, 4), generator=0)
    with pytest.raises(ValueError, match="mode='fan_avg'"):
        kaiming_normal_(torch.empty(4, 4), generator=gen(), mode="fan_avg")
    with pytest.raises(ValueError, match=r"1-D tensor of shape \(4,\)"):
        xavier_uniform_(torch.empty(4), generator=gen())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_generator_gives_same_weights_on_cuda():
    a = kaiming_normal_(torch.empty(64, 32, device="cuda"), generator=gen(5)).cpu()
    assert torch.equal(a, kaiming_normal_(torch.empty(64, 32), generator=gen(5)))

"""ConstNet's ConstAvg against its formula."""

import math

import pytest
import torch
import torch.nn.functional as F

from detinit.init import const_avg_


@pytest.mark.parametrize(
    "shape,groups", [((16, 3, 3, 3), 1), ((160, 16, 1, 1), 1), ((10, 64), 1), ((32, 4, 3, 3), 4), ((8, 8, 2, 4), 1)]
)
def test_c1_is_exact_channel_mean(shape, groups):
    w = const_avg_(torch.empty(shape, dtype=torch.float64), groups=groups)
    q = shape[1]
    centre = tuple((k - 1) // 2 for k in shape[2:])
    expected = torch.zeros(shape, dtype=torch.float64)
    expected[(slice(None), slice(None)) + centre] = 1.0 / q
    assert torch.equal(w, expected)


def test_every_output_channel_is_the_per_pixel_mean():
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    w = const_avg_(torch.empty(16, 3, 3, 3, dtype=torch.float64))
    y = F.conv2d(x, w, padding=1)
    torch.testing.assert_close(y, x.mean(1, keepdim=True).expand(-1, 16, -1, -1))
    assert (y - y[:, :1]).abs().max() == 0  # channels bitwise identical


def test_noise_part_matches_variance_formula_and_seed():
    shape, c, gain = (256, 128, 3, 3), 0.25, 2.0
    w = const_avg_(torch.empty(shape, dtype=torch.float64), c, gain=gain, generator=torch.Generator().manual_seed(1))
    fan_in = 128 * 9
    noise = w.clone()
    noise[:, :, 1, 1] -= c / 128
    assert math.isclose(noise.var().item(), gain * (1 - c) / fan_in, rel_tol=0.02)
    assert abs(noise.mean().item()) < 1e-4
    again = const_avg_(
        torch.empty(shape, dtype=torch.float64), c, gain=gain, generator=torch.Generator().manual_seed(1)
    )
    assert torch.equal(w, again)


def test_no_global_rng_and_errors():
    state = torch.random.get_rng_state()
    const_avg_(torch.empty(8, 8), 0.5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(state, torch.random.get_rng_state())
    with pytest.raises(ValueError, match="generator"):
        const_avg_(torch.empty(8, 8), 0.5)
    for bad in (-0.1, 1.5, "1", True):
        with pytest.raises(ValueError, match=r"c must be a number in \[0, 1\]"):
            const_avg_(torch.empty(8, 8), bad)
    with pytest.raises(ValueError, match=r"1-D tensor of shape \(8,\)"):
        const_avg_(torch.empty(8))
    with pytest.raises(TypeError, match="int64"):
        const_avg_(torch.zeros(8, 8, dtype=torch.int64))

"""check_zero_one: the official sanity check and the magnitude variant."""

import pytest
import torch
from torch import nn

from detinit import check_zero_one, initialize


def test_passes_after_zero_fails_after_kaiming():
    net = nn.Sequential(
        nn.Conv2d(3, 64, 3), nn.BatchNorm2d(64), nn.Conv2d(64, 64, 3), nn.Conv2d(64, 32, 1), nn.Linear(32, 10)
    )
    initialize(net, "zero", variant="paper")
    assert check_zero_one(net).ok and "all 10 trainable tensors pass" in str(check_zero_one(net))
    official = check_zero_one(net, mode="official")
    assert [o.name for o in official.offenders] == ["0.weight"]  # {0, +c, -c}: three values
    initialize(net, "zero")  # the stem's Hadamard block covers all 27 patch values: {+c, -c}
    assert check_zero_one(net, mode="official").ok
    initialize(net, "kaiming")
    result = check_zero_one(net)
    assert not result and {o.name for o in result.offenders} == {"0.weight", "2.weight", "3.weight", "4.weight"}
    assert "4 of 10 trainable tensors fail" in str(result)


def test_frozen_parameters_are_not_checked_and_mode_is_validated():
    layer = nn.Linear(4, 4)
    layer.requires_grad_(False)
    assert check_zero_one(layer).checked == 0
    with pytest.raises(ValueError, match="mode='strict'"):
        check_zero_one(layer, mode="strict")
    w = nn.Linear(2, 2)
    with torch.no_grad():
        w.weight.copy_(torch.tensor([[0.5, -0.5], [0.0, 0.25]]))
        w.bias.zero_()
    assert not check_zero_one(w)

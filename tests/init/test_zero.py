"""ZerO Algorithms 1 and 2: golden values, structure, singular values, conventions, errors."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from detinit.init import hadamard_scale, identity_, partial_identity_, zero_, zero_singular_values

from .reference import zero_kernel, zero_matrix

LINEAR_SHAPES = [
    (1, 1),
    (64, 64),
    (10, 512),
    (512, 10),
    (128, 64),
    (1000, 512),
    (640, 512),
    (96, 64),
    (7, 5),
    (3, 1),
    (2048, 784),
    (784, 784),
    (33, 32),
    (5, 7),
]
CONV_SHAPES = [  # (shape, groups)
    ((16, 3, 1, 1), 1),
    ((64, 64, 3, 3), 1),
    ((128, 64, 3, 3), 1),
    ((64, 128, 1, 1), 1),
    ((96, 64, 5, 5), 1),
    ((24, 8, 7, 7), 1),
    ((16, 16, 2, 2), 1),
    ((32, 16, 4, 4), 1),
    ((16, 8, 3, 5), 1),
    ((16, 8, 1, 7), 1),
    ((32, 4, 3, 3), 4),
    ((16, 1, 3, 3), 16),
    ((32, 1, 3, 3), 16),
    ((12, 2, 3, 3), 3),
    ((48, 4, 3, 3), 2),
    ((20, 10, 3), 1),
    ((40, 10, 4), 2),
    ((8, 8, 3, 3, 3), 1),
    ((16, 4, 1, 3, 3), 2),
]


@pytest.mark.parametrize("norm", ["orthonormal", "paper"])
@pytest.mark.parametrize("shape", LINEAR_SHAPES)
def test_linear_golden(shape, norm):
    got = zero_(torch.empty(shape, dtype=torch.float64), norm=norm)
    assert torch.equal(got, torch.from_numpy(zero_matrix(*shape, norm=norm)))


@pytest.mark.parametrize("norm", ["orthonormal", "paper"])
@pytest.mark.parametrize("shape,groups", CONV_SHAPES)
def test_conv_golden(shape, groups, norm):
    got = zero_(torch.empty(shape, dtype=torch.float64), norm=norm, groups=groups)
    assert torch.equal(got, torch.from_numpy(zero_kernel(shape, groups, norm=norm)))


@pytest.mark.parametrize(
    "shape,groups", [((3, 16, 3, 3), 1), ((64, 32, 3, 3), 1), ((16, 8, 4, 4), 2), ((8, 4, 3), 4), ((4, 16, 1, 3, 3), 2)]
)
def test_conv_transpose_golden(shape, groups):
    got = zero_(torch.empty(shape, dtype=torch.float64), groups=groups, transposed=True)
    assert torch.equal(got, torch.from_numpy(zero_kernel(shape, groups, transposed=True)))


def test_scale_formulas():
    for p in [2, 3, 4, 5, 64, 65, 1000, 1024]:
        m = math.ceil(math.log2(p))
        assert hadamard_scale(p) == 2.0 ** (-m / 2)
        assert hadamard_scale(p, "paper") == 2.0 ** (-(m - 1) / 2)
        assert math.isclose(hadamard_scale(p, "paper") / hadamard_scale(p), math.sqrt(2))


@pytest.mark.parametrize("p,q", [(128, 64), (1024, 3), (64, 64), (10, 512)])
def test_isometry_when_power_of_two(p, q):
    s = zero_singular_values(p, q)
    torch.testing.assert_close(s, torch.ones_like(s), rtol=0, atol=1e-12)
    torch.testing.assert_close(
        zero_singular_values(p, q, "paper"), (math.sqrt(2) if p > q else 1.0) * torch.ones_like(s), rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("p,q", [(1000, 512), (640, 512), (96, 64), (33, 16), (3, 2), (1500, 1024)])
def test_singular_values_between_half_sqrt2_and_1_when_q_at_most_half(p, q):
    s = zero_singular_values(p, q)
    assert q <= 2 ** (math.ceil(math.log2(p)) - 1)
    assert s.max() <= 1 + 1e-12 and s.min() >= 2**-0.5 - 1e-12
    assert s.min() < 1 - 1e-6  # not an isometry: the docs must say so, and they do


def test_singular_value_bound_and_full_rank_for_every_expanding_shape():
    """Over all 2 <= Q < P <= 70: sigma <= 1, sigma_min^2 >= 1 - (2^m - P) Q / 2^m, full column rank."""
    for p in range(2, 71):
        n = 1 << math.ceil(math.log2(p))
        for q in range(1, p):
            s = zero_singular_values(p, q).numpy()
            assert s.max() <= 1 + 1e-12
            assert s.min() ** 2 >= 1 - (n - p) * q / n - 1e-9
            assert s.min() > 1e-6, (p, q)  # full column rank: no input direction is lost
    assert np.isclose(zero_singular_values(7, 5).min().item(), 0.61, atol=0.01)  # the documented example


@given(
    p=st.integers(1, 40),
    q=st.integers(1, 40),
    groups=st.integers(1, 4),
    kernel=st.lists(st.integers(1, 5), min_size=0, max_size=3),
    transposed=st.booleans(),
    norm=st.sampled_from(["orthonormal", "paper"]),
)
def test_structure_properties(p, q, groups, kernel, transposed, norm):
    if not kernel:
        groups, transposed = 1, False
    shape = ((q * groups, p) if transposed else (p * groups, q)) + tuple(kernel)
    w = torch.full(shape, float("nan"))
    state = torch.random.get_rng_state()
    assert zero_(w, norm=norm, groups=groups, transposed=transposed) is w
    assert torch.equal(torch.random.get_rng_state(), state)  # nothing random happened
    expected_nnz = groups * (p * q if p > q else min(p, q))
    assert int((w != 0).sum()) == expected_nnz
    centre = tuple((k - 1) // 2 for k in kernel)
    off_centre = w.clone()
    off_centre[(slice(None), slice(None)) + centre] = 0
    assert not off_centre.any()  # only the centre tap is non-zero
    magnitudes = w[w != 0].abs().unique()
    expected = 1.0 if p <= q else hadamard_scale(p, norm)
    assert torch.allclose(magnitudes, torch.tensor([expected]))
    assert (
        torch.equal(w, torch.from_numpy(zero_kernel(shape, groups, transposed, norm=norm)).float())
        if kernel
        else torch.equal(w, torch.from_numpy(zero_matrix(p, q, norm=norm)).float())
    )


@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_identity_kernel_reproduces_input_with_same_padding(kernel, dims):
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[dims]
    x = torch.randn((2, 6) + (9,) * dims, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    w = identity_(torch.empty((6, 6) + (kernel,) * dims, dtype=torch.float64))
    assert torch.equal(conv(x, w, padding="same"), x)
    wg = identity_(torch.empty((6, 2) + (kernel,) * dims, dtype=torch.float64), groups=3)
    assert torch.equal(conv(x, wg, padding="same", groups=3), x)
    wd = identity_(torch.empty((6, 1) + (kernel,) * dims, dtype=torch.float64), groups=6)  # depthwise
    assert torch.equal(conv(x, wd, padding="same", groups=6), x)


@pytest.mark.parametrize("kernel", [1, 3, 5])
def test_transposed_identity_reproduces_input(kernel):
    x = torch.randn(2, 8, 7, 7, dtype=torch.float64)
    w = identity_(torch.empty(8, 4, kernel, kernel, dtype=torch.float64), groups=2, transposed=True)
    assert torch.equal(F.conv_transpose2d(x, w, padding=kernel // 2, groups=2), x)


def test_conv_applies_the_linear_matrix_at_every_position():
    x = torch.randn(2, 24, 5, 5, dtype=torch.float64)
    w = zero_(torch.empty(96, 24, 3, 3, dtype=torch.float64))
    m = zero_(torch.empty(96, 24, dtype=torch.float64))
    torch.testing.assert_close(F.conv2d(x, w, padding=1), torch.einsum("oi,bihw->bohw", m, x))
    wt = zero_(torch.empty(24, 96, 3, 3, dtype=torch.float64), transposed=True)
    torch.testing.assert_close(F.conv_transpose2d(x, wt, padding=1), torch.einsum("oi,bihw->bohw", m, x))


def test_partial_identity_keeps_first_inputs_and_pads():
    assert torch.equal(partial_identity_(torch.empty(5, 3)), torch.eye(5, 3))
    assert torch.equal(partial_identity_(torch.empty(3, 5)), torch.eye(3, 5))
    w = partial_identity_(torch.empty(6, 3, 3, 3))
    assert torch.equal(w[:, :, 1, 1], torch.eye(6, 3)) and int((w != 0).sum()) == 3


@pytest.mark.parametrize("shape", [(512, 10), (64, 64, 3, 3), (96, 64, 3, 3), (1000, 512)])
def test_bitwise_identical_across_dtypes_and_threads(shape):
    ref = zero_(torch.empty(shape, dtype=torch.float64))
    assert torch.equal(zero_(torch.empty(shape, dtype=torch.float32)), ref.float())
    assert torch.equal(zero_(torch.empty(shape, dtype=torch.bfloat16)), ref.bfloat16())
    assert torch.equal(zero_(torch.empty(shape, dtype=torch.float16)), ref.half())
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2):
            torch.set_num_threads(n)
            results.append(zero_(torch.empty(shape)))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(results[0], results[1])


def test_parameter_in_place_keeps_identity_dtype_and_grad_flag():
    layer = torch.nn.Conv2d(16, 32, 3).double()
    weight = layer.weight
    ptr = weight.data_ptr()
    out = zero_(layer.weight)
    assert out is weight and layer.weight is weight and weight.data_ptr() == ptr
    assert weight.dtype == torch.float64 and weight.requires_grad and weight.grad_fn is None


@pytest.mark.parametrize("shape", [(64, 16, 1, 1), (16, 16, 1, 1), (16, 64, 1), (64, 16, 3, 3), (64, 16)])
@pytest.mark.parametrize("layout", ["channels_last", "transposed_storage", "strided"])
def test_non_contiguous_weights_get_the_contiguous_fill(shape, layout):
    """A 1x1 kernel is filled through a view, a bigger one through an index: any strides, the same values."""
    expected = zero_(torch.empty(shape))
    if layout == "channels_last" and len(shape) == 4:
        weight = torch.full(shape, math.nan).to(memory_format=torch.channels_last)
    elif layout == "transposed_storage":  # dims 0 and 1 swapped in memory
        weight = torch.full((shape[1], shape[0], *shape[2:]), math.nan).transpose(0, 1)
    else:  # every other element of a bigger buffer
        weight = torch.full((shape[0], 2 * shape[1], *shape[2:]), math.nan)[:, ::2]
    assert torch.equal(zero_(weight), expected)
    assert torch.equal(partial_identity_(weight), partial_identity_(torch.empty(shape)))


@pytest.mark.parametrize("mode", ["grad", "no_grad", "inference_mode"])
def test_fills_run_without_grad_and_leave_the_grad_mode_as_it_was(mode):
    weight = torch.nn.Parameter(torch.empty(8, 4))
    context = {"grad": torch.enable_grad, "no_grad": torch.no_grad, "inference_mode": torch.inference_mode}[mode]
    with context():
        before = torch.is_grad_enabled()
        assert zero_(weight) is weight and weight.grad_fn is None
        assert torch.is_grad_enabled() == before
    assert torch.equal(weight.detach(), zero_(torch.empty(8, 4)))


@pytest.mark.parametrize("fn", [zero_, partial_identity_, identity_])
def test_bad_input_errors_name_the_shape(fn):
    with pytest.raises(ValueError, match=r"0-D tensor of shape \(\)"):
        fn(torch.tensor(1.0))
    with pytest.raises(ValueError, match=r"1-D tensor of shape \(5,\).*Linear weight"):
        fn(torch.empty(5))
    with pytest.raises(ValueError, match=r"6-D"):
        fn(torch.empty(2, 2, 1, 1, 1, 1))
    with pytest.raises(TypeError, match=r"torch.int64.*floating"):
        fn(torch.zeros(4, 4, dtype=torch.int64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        fn(np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"out_channels=10 .*\(10, 4, 3, 3\).*groups=3"):
        fn(torch.empty(10, 4, 3, 3), groups=3)
    with pytest.raises(ValueError, match=r"in_channels=10 .*groups=4"):
        fn(torch.empty(10, 4, 3, 3), groups=4, transposed=True)
    with pytest.raises(ValueError, match="groups=0 is not supported; groups must be an int >= 1"):
        fn(torch.empty(8, 4, 3, 3), groups=0)
    with pytest.raises(ValueError, match=r"2-D \(Linear\) weight of shape \(8, 4\)"):
        fn(torch.empty(8, 4), groups=2)
    with pytest.raises(ValueError, match="zero-sized"):
        fn(torch.empty(0, 4))


def test_bad_norm_and_non_square_identity():
    with pytest.raises(ValueError, match=r"norm='unit'.*orthonormal.*paper"):
        zero_(torch.empty(8, 4), norm="unit")
    with pytest.raises(ValueError, match=r"identity_: .*\(8, 4, 3, 3\).*4 inputs to 8 outputs"):
        identity_(torch.empty(8, 4, 3, 3))
    w = torch.full((8, 4), 3.0)
    with pytest.raises(ValueError):
        zero_(w, norm="bad")
    assert torch.equal(w, torch.full((8, 4), 3.0))  # nothing written before the error


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_bitwise():
    for shape in [(1000, 512), (96, 64, 3, 3), (64, 64, 3, 3)]:
        assert torch.equal(zero_(torch.empty(shape, device="cuda")).cpu(), zero_(torch.empty(shape)))

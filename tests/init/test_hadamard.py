"""Sylvester Hadamard matrices against scipy and their defining identities."""

import pytest
import scipy.linalg
import torch
from hypothesis import given
from hypothesis import strategies as st

from detinit.init import fill_sylvester_, hadamard
from detinit.init.tensor.embedding import embedding_rows, zero_embedding_
from detinit.init.tensor.hadamard import ceil_log2, fill_sylvester_entries_, is_power_of_two
from detinit.init.tensor.zero import hadamard_columns, hadamard_scale, zero_


@pytest.mark.parametrize("n", [1, 2, 4, 8, 16, 64, 256, 1024])
def test_matches_scipy(n):
    expected = torch.from_numpy(scipy.linalg.hadamard(n).astype("float64"))
    assert torch.equal(hadamard(n, dtype=torch.float64), expected)


@pytest.mark.parametrize("n", [1, 2, 32, 512])
def test_defining_identities(n):
    h = hadamard(n, dtype=torch.float64)
    assert torch.equal(h, h.T)
    assert torch.equal(h @ h.T, n * torch.eye(n, dtype=torch.float64))  # exact: integers
    hn = hadamard(n, dtype=torch.float64, normalized=True)
    torch.testing.assert_close(hn @ hn.T, torch.eye(n, dtype=torch.float64), rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtype_and_exact_values(dtype):
    h = hadamard(16, dtype=dtype)
    assert h.dtype == dtype
    assert torch.equal(h.double(), hadamard(16, dtype=torch.float64))


def test_default_dtype_and_device():
    h = hadamard(8)
    assert h.dtype == torch.get_default_dtype() and h.device.type == "cpu"


@given(p=st.integers(1, 300), q=st.integers(1, 300))
def test_block_is_top_left_of_any_larger_matrix(p, q):
    n = 1 << ceil_log2(max(p, q))
    full = torch.from_numpy(scipy.linalg.hadamard(n).astype("float64"))
    block = fill_sylvester_(torch.empty(p, q, dtype=torch.float64))
    assert torch.equal(block, full[:p, :q])
    # the block does not depend on which power of two it is cut from
    assert torch.equal(block, torch.from_numpy(scipy.linalg.hadamard(2 * n).astype("float64"))[:p, :q])


def test_fill_into_strided_view_leaves_the_rest():
    base = torch.full((6, 10), 7.0)
    view = base[1:5, ::2]  # non-contiguous (4, 5) view
    fill_sylvester_(view, 0.5)
    assert torch.equal(view, 0.5 * hadamard(8)[:4, :5])
    base[1:5, ::2] = 7.0
    assert torch.equal(base, torch.full((6, 10), 7.0))


@pytest.mark.parametrize("bad", [3, 6, 12])
def test_non_power_of_two_is_rejected(bad):
    with pytest.raises(ValueError, match="power of two"):
        hadamard(bad)


@pytest.mark.parametrize("bad", [0, -4, 2.0, True, "8"])
def test_an_order_that_is_not_a_positive_int_is_rejected(bad):
    with pytest.raises(ValueError, match=rf"hadamard: n={bad!r} is not supported; n must be an int >= 1"):
        hadamard(bad)


def test_an_order_too_large_for_a_tensor_is_rejected_before_allocating():
    with pytest.raises(ValueError, match=r"n=1099511627776 is too large: .* 2\*\*80 entries.*fwht"):
        hadamard(2**40)


def test_integer_dtype_is_rejected():
    with pytest.raises(TypeError, match="floating"):
        hadamard(4, dtype=torch.int64)
    with pytest.raises(TypeError, match="int32"):
        fill_sylvester_(torch.empty(2, 2, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"2-D.*\(2, 2, 2\)"):
        fill_sylvester_(torch.empty(2, 2, 2))


def test_helpers():
    assert [ceil_log2(n) for n in (1, 2, 3, 4, 5, 1024, 1025)] == [0, 1, 2, 2, 3, 10, 11]
    assert [n for n in range(1, 70) if is_power_of_two(n)] == [1, 2, 4, 8, 16, 32, 64]
    with pytest.raises(ValueError):
        ceil_log2(0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_is_bitwise_identical():
    assert torch.equal(hadamard(256, device="cuda").cpu(), hadamard(256))


@given(
    st.lists(st.integers(0, 2000), min_size=1, max_size=40),
    st.lists(st.integers(0, 4095), min_size=1, max_size=30),
    st.sampled_from([torch.float32, torch.float64, torch.bfloat16]),
)
def test_sylvester_entries_are_the_popcount_formula(rows, columns, dtype):
    """fill_sylvester_entries_ gives H[i, j] = (-1)^popcount(i & j) times the scale, exactly, for any rows and
    columns (rows 0, 1, 2, ... are filled in place by doubling, others gathered from a scratch block)."""
    for chosen in (rows, list(range(len(rows)))):
        expected = torch.tensor([[(-1.0) ** (i & j).bit_count() for j in columns] for i in chosen]) * 0.375
        filled = fill_sylvester_entries_(
            torch.empty(len(chosen), len(columns), dtype=dtype), torch.tensor(chosen), torch.tensor(columns), 0.375
        )
        assert torch.equal(filled, expected.to(dtype))
    kernel = torch.zeros(len(rows), len(columns), 3)  # a strided view, as a conv's centre tap
    fill_sylvester_entries_(kernel[:, :, 1], torch.arange(len(rows)), torch.tensor(columns), 1.0)
    assert torch.equal(kernel[:, :, 1].abs(), torch.ones(len(rows), len(columns))) and kernel[:, :, 0].eq(0).all()


def test_far_rows_are_written_without_a_scratch_of_that_many_rows():
    """Rows far beyond their count (row 2**40) take the parity path: the same values, no 2**40-row scratch."""
    rows, columns = [2**40, 5, 2**33 + 7, 9_999, 0], [0, 1, 3, 64, 2**40 + 1, 4095]
    expected = torch.tensor([[(-1.0) ** (i & j).bit_count() for j in columns] for i in rows]) * 0.25
    filled = fill_sylvester_entries_(torch.empty(5, 6), torch.tensor(rows), torch.tensor(columns), 0.25)
    assert torch.equal(filled, expected)
    near = torch.tensor([3, 1, 2])  # the gathered path, for comparison: bitwise the same values
    assert torch.equal(
        fill_sylvester_entries_(torch.empty(3, 6), near, torch.tensor(columns), 0.25),
        torch.tensor([[(-1.0) ** (i & j).bit_count() for j in columns] for i in near.tolist()]) * 0.25,
    )


@pytest.mark.parametrize(
    ("rows", "columns", "words"),
    [
        (torch.tensor([0.5, 1.0]), torch.arange(2), r"rows of shape \(2,\), dtype torch.float32 is not supported"),
        (torch.tensor([-1, 0]), torch.arange(2), "rows must be a 1-D integer tensor of indices >= 0"),
        (torch.tensor([1, 0], dtype=torch.uint8), torch.arange(2), "dtype torch.uint8 is not supported"),  # a mask
        (torch.arange(2), torch.arange(4).view(2, 2), r"columns of shape \(2, 2\)"),
        (torch.arange(3), torch.arange(2), r"matrix of shape \(2, 2\) does not fit 3 rows and 2 columns"),
    ],
)
def test_sylvester_entries_refuse_indices_that_do_not_fit(rows, columns, words):
    with pytest.raises(ValueError, match=words):
        fill_sylvester_entries_(torch.empty(2, 2), rows, columns)


def _popcount_matrix(rows: list[int] | range, columns: list[int]) -> torch.Tensor:
    return torch.tensor([[(-1.0) ** (i & j).bit_count() for j in columns] for i in rows], dtype=torch.float64)


@given(
    st.integers(2, 700),
    st.integers(1, 64),
    st.sampled_from(["first", "spanning"]),
    st.sampled_from([1, 3]),
    st.sampled_from([torch.float32, torch.bfloat16]),
    st.booleans(),
)
def test_expanding_zero_blocks_are_the_popcount_formula(out_features, in_features, columns, kernel, dtype, transposed):
    """zero_ writes c H[i, cols[b]] on the centre tap of an expanding layer, as the product of two small
    cached factors (rows 64 h + l; a ConvTranspose kernel (in, out, k, k) holds the transpose, written along
    its own rows); every other tap is 0, including where the tensor held garbage."""
    if out_features <= in_features:
        out_features = in_features + 1
    shape = (in_features, out_features) if transposed else (out_features, in_features)
    weight = torch.full((*shape, kernel, kernel), 7.0, dtype=dtype)
    zero_(weight, columns=columns, transposed=transposed)
    cols = hadamard_columns(out_features, in_features, columns).tolist()
    expected = _popcount_matrix(range(out_features), cols) * hadamard_scale(out_features, "orthonormal")
    centre = weight[:, :, kernel // 2, kernel // 2]
    assert torch.equal(centre.t() if transposed else centre, expected.to(dtype))
    centre.zero_()
    assert weight.eq(0).all()


@given(st.integers(1, 3000), st.integers(2, 200), st.booleans())
def test_embedding_rows_repeat_with_their_period(vocab, dim, constant_token):
    """Token i's row is c H[first + i % period, :d] (the rows repeat once the distinct ones are used up)."""
    if vocab == dim:
        vocab += 1
    table = zero_embedding_(torch.empty(vocab, dim, dtype=torch.float64), constant_token=constant_token)
    first, period = embedding_rows(dim, constant_token)
    distinct = _popcount_matrix(range(first, first + min(vocab, period)), list(range(dim)))
    expected = distinct[torch.arange(vocab) % period] * hadamard_scale(dim, "orthonormal")
    assert torch.equal(table, expected)

r"""A norm that reads the token embedding, set so that every post-norm block after it is the identity:
:func:`settle_embedding_norms_`; where no norm does (GPT-1 sums its tables straight into post-norm blocks), the
token table itself, scaled to rows of mean square :math:`1 - \epsilon`: :func:`settle_stream_tables_`.

A post-norm block is :math:`\mathrm{LN}(x + f(x))`; ZerO makes :math:`f(x) = 0`, so the block is
:math:`x / \sqrt{\overline{x^2} + \epsilon}` (for mean-zero :math:`x`), the identity only where
:math:`\overline{x^2} = 1 - \epsilon`. The embedding norm's output has mean square
:math:`m / (m + \epsilon)` for an input of mean square :math:`m` (ZerO's table rows are balanced Hadamard rows:
mean 0, one magnitude); with :math:`m = 1/64` and :math:`\epsilon = 10^{-5}` that is :math:`1 - 6.4 \cdot 10^{-4}`,
and the first block moves its input by :math:`3 \cdot 10^{-4}` (relative). Scaling the embedding norm by

.. math:: g = \sqrt{(1 - \epsilon)(m + \epsilon) / m}

puts its output at the fixed point :math:`\pm\sqrt{1 - \epsilon}`, which every later norm with the same
:math:`\epsilon` returns unchanged: the blocks are the identity to rounding. :math:`g - 1` is
:math:`\epsilon / 2m` to first order (:math:`3 \cdot 10^{-4}` above): the norm starts where it would, less the
bias its :math:`\epsilon` adds. Nothing is changed where the input is not mean-zero with one mean square for
every token (zero rows, a padding token's, aside), where the norm's scale is not all ones, or where
:math:`g` rounds to 1 in the scale's dtype (BERT's :math:`\epsilon = 10^{-12}`).

>>> round(fixed_point_scale(1 / 64, 1e-5), 6)
1.000315
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..roles.trace import run_with_hooks

EPS_ATTRIBUTES = ("eps", "variance_epsilon", "epsilon", "layer_norm_eps")


def fixed_point_scale(mean_square: float, eps: float) -> float:
    """:math:`g = \\sqrt{(1 - \\epsilon)(m + \\epsilon) / m}`: the scale that maps an input of mean square ``m`` to
    the post-norm fixed point, mean square :math:`1 - \\epsilon`."""
    return math.sqrt((1.0 - eps) * (mean_square + eps) / mean_square)


def settle_embedding_norms_(model: nn.Module, example: object, names: list[str]) -> dict[str, str]:
    """Scale each embedding norm in ``names`` (module names) to the post-norm fixed point for its input on
    ``example``; returns ``{scale parameter: reason}`` for those changed."""
    modules = {name: model.get_submodule(name) for name in names}
    settled: dict[str, str] = {}
    inputs = _norm_inputs(model, example, modules)
    with torch.no_grad():
        for name, module in modules.items():
            eps = _eps(module)
            weight = module._parameters.get("weight")
            x = inputs.get(name)
            if eps is None or not eps > 0 or weight is None or weight.dim() != 1 or x is None:
                continue
            if not torch.equal(weight, torch.ones_like(weight)):
                continue
            mean_square = _one_mean_square(x)
            if mean_square is None:
                continue
            scale = fixed_point_scale(mean_square, eps)
            if float(torch.tensor(scale, dtype=weight.dtype)) == 1.0:
                continue  # a tiny epsilon (BERT's 1e-12): 1 is already the fixed point in this precision
            weight.fill_(scale)
            settled[f"{name}.weight"] = (
                f"{scale:.7g} = sqrt((1 - eps)(m + eps) / m), eps {eps:g}, input mean square m {mean_square:.4g}: "
                f"its output is the post-norm fixed point +-sqrt(1 - eps), so the post-norm blocks after it are "
                "the identity"
            )
    return settled


def settle_stream_tables_(model: nn.Module, example: object, pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Scale each token table that enters a post-norm stream with no norm of its own (``(table, norm)``: the
    first post-norm block's norm reads its rows through zero branches alone, as in GPT-1) so that its rows have
    mean square ``1 - eps``, the fixed point of that norm and of every later one: the blocks are then
    the identity. Nothing is changed unless the table's rows are mean-zero with one mean square, the norm's input
    on ``example`` is too (no position rows added to it), and the norm's scale is all ones. Returns
    ``{table weight: reason}`` for those changed."""
    norms = {norm: model.get_submodule(norm) for _, norm in pairs}
    inputs = _norm_inputs(model, example, norms)
    settled: dict[str, str] = {}
    with torch.no_grad():
        for table_name, norm_name in pairs:
            norm, table = norms[norm_name], model.get_submodule(table_name)
            eps = _eps(norm)
            weight, scale = table._parameters.get("weight"), norm._parameters.get("weight")
            x = inputs.get(norm_name)
            if eps is None or not 0 < eps < 1 or weight is None or x is None:
                continue
            if scale is not None and not torch.equal(scale, torch.ones_like(scale)):
                continue
            rows, seen = _one_mean_square(weight), _one_mean_square(x)
            if rows is None or seen is None or abs(rows - seen) > 1e-6 * rows:
                continue
            factor = math.sqrt((1.0 - eps) / rows)
            weight.mul_(factor)
            settled[f"{table_name}.weight"] = (
                f"rows scaled by {factor:.7g} = sqrt((1 - eps) / m), eps {eps:g}, row mean square m {rows:.4g}: "
                f"they enter a post-norm stream ({norm_name}) at its fixed point, so its blocks are the identity"
            )
    return settled


def _eps(norm: nn.Module) -> float | None:
    """A norm's epsilon, from whichever attribute its class keeps it in."""
    return next((getattr(norm, a) for a in EPS_ATTRIBUTES if isinstance(getattr(norm, a, None), float)), None)


def _one_mean_square(x: torch.Tensor) -> float | None:
    """The mean square over the features, if every token's is the same and its mean is 0; else ``None``.
    Zero rows (a padding token's) are left out: the norm maps them to 0 whatever its scale."""
    x = x.detach().double().reshape(-1, x.shape[-1])
    x = x[x.abs().amax(dim=-1) > 0]
    mean_square = x.pow(2).mean(dim=-1)
    if x.numel() == 0:
        return None
    if float(x.mean(dim=-1).abs().max()) > 1e-7 * float(mean_square.max().sqrt()):
        return None
    if float(mean_square.max() - mean_square.min()) > 1e-9 * float(mean_square.max()):
        return None
    return float(mean_square[0])


def _norm_inputs(model: nn.Module, example: object, modules: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    found: dict[str, torch.Tensor] = {}

    def hook(name: str):
        def capture(module: nn.Module, args: tuple) -> None:
            if args and isinstance(args[0], torch.Tensor) and name not in found:
                found[name] = args[0].detach().clone()

        return capture

    run_with_hooks(model, example, [m.register_forward_pre_hook(hook(n)) for n, m in modules.items()])
    return found

r"""Dynamical isometry: singular values of the input-output Jacobian.

For one input ``x`` (batch of 1, model in eval mode so it is a function of
``x`` alone), :math:`J = \partial f(x)/\partial x` is never formed. Lanczos
iteration on :math:`J^\top J`, applied as a Jacobian-vector product followed by
a vector-Jacobian product (``torch.func.jvp`` / ``torch.func.vjp``), gives Ritz
values whose square roots approximate the singular values of :math:`J`; the
extreme ones converge first. With ``num_steps >= x.numel()`` the result is the
exact set of *distinct* singular values (up to float error): Lanczos stops
early at an invariant subspace, so an exact isometry returns a single 1. Cost: ``num_steps`` forward-and-backward
passes, so it scales to real models.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from ..contract import checked_arguments
from ._checks import run_forward


@torch.no_grad()
def _lanczos(
    apply: callable, dim: int, steps: int, dtype: torch.dtype, device: torch.device, generator: torch.Generator
) -> torch.Tensor:
    """Ritz values of a symmetric PSD operator (full reorthogonalisation)."""
    v = torch.randn(dim, dtype=dtype, generator=generator).to(device)
    v /= v.norm()
    basis = [v]
    alphas, betas = [], []
    for k in range(steps):
        w = apply(basis[-1])
        alpha = torch.dot(w, basis[-1])
        alphas.append(alpha)
        for b in basis:  # full reorthogonalisation: robust for the few steps used here
            w -= torch.dot(w, b) * b
        beta = w.norm()
        if k == steps - 1 or beta <= 1e-10 * max(1.0, float(alpha.abs())):
            break
        betas.append(beta)
        basis.append(w / beta)
    t = torch.diag(torch.stack(alphas))
    if betas:
        off = torch.stack(betas)
        t = t + torch.diag(off, 1) + torch.diag(off, -1)
    return torch.linalg.eigvalsh(t.double().cpu()).clamp(min=0)


@checked_arguments()
def jacobian_singular_values(model: nn.Module, x: torch.Tensor, num_steps: int = 32, seed: int = 0) -> torch.Tensor:
    """Estimated singular values (descending, float64) of the input-output Jacobian at ``x``.

    Args:
        model: any module; it is put in eval mode for the measurement and restored.
        x: one input with a batch dimension of 1.
        num_steps: Lanczos steps (forward+backward passes); ``>= x.numel()`` gives the exact spectrum.
        seed: seed of the starting vector.

    >>> lin = torch.nn.Linear(3, 3, bias=False).double()
    >>> s = jacobian_singular_values(lin, torch.zeros(1, 3, dtype=torch.float64), num_steps=3)
    >>> torch.allclose(s, torch.linalg.svdvals(lin.weight.detach()))
    True
    """
    if x.dim() < 1 or x.shape[0] != 1:
        raise ValueError(f"jacobian_singular_values: x must have batch size 1, got shape {tuple(x.shape)}")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():  # a plain forward first: a model that does not run on x is named, not traced through
            run_forward("jacobian_singular_values", model, x)
        # forward-mode AD has no rule for the fused attention kernels: attention runs on the math backend here
        with sdpa_kernel([SDPBackend.MATH]):

            def flat(v: torch.Tensor) -> torch.Tensor:
                return model(v.reshape(x.shape)).reshape(-1)

            point = x.reshape(-1).detach()
            _, vjp_fn = torch.func.vjp(flat, point)

            def normal_operator(v: torch.Tensor) -> torch.Tensor:
                _, jv = torch.func.jvp(flat, (point,), (v,))
                return vjp_fn(jv)[0]

            ritz = _lanczos(
                normal_operator,
                point.numel(),
                min(num_steps, point.numel()),
                point.dtype,
                point.device,
                torch.Generator().manual_seed(seed),
            )
    finally:
        model.train(was_training)
    return ritz.sqrt().flip(0)

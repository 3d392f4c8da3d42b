r"""Symmetry-breaking mechanisms, selectable by name.

A ConstNet (or any network whose channels start identical) stays in the
symmetric subspace under exact arithmetic: every gradient is symmetric too.
What leaves it, and how detinit emulates or controls it:

============================  ===============================================  ==================
name                          what it is / emulates                            knob
============================  ===============================================  ==================
``none``                      fully deterministic training: torch              --
                              deterministic algorithms, cuDNN deterministic,
                              no benchmark autotuning
``gpu``                       non-deterministic cuDNN / atomic-add reductions  --
                              on CUDA (the ConstNet paper's default). Does not
                              exist on a CPU: refused there, use ``rounding``
``rounding``                  CPU emulation of reduction-order                 ``scale`` (relative,
                              non-determinism: each gradient element is        default the dtype's
                              multiplied by ``1 + scale * N(0, 1)``            machine epsilon)
``dropout``                   dropout on residual-branch outputs (p = 0.01 in  ``p``
                              the paper's runs)
``weight_noise``              partially random ConstNet: residual-branch       ``s``
                              weights get ``+ s * He(fan_out)`` noise once
``activation_noise``          Gaussian noise added to residual-branch outputs  ``sigma``
                              in the forward pass
``gradient_noise``            Gaussian noise added to the gradient flowing     ``sigma``
                              back through residual-branch outputs
============================  ===============================================  ==================

**Why ``rounding`` matches atomic-add reordering.** On a GPU each element of
a weight gradient is a sum over the batch and spatial positions that atomics
(or split reductions) accumulate in an order fixed at run time. Two orders of
the same float sum differ by a few units in the last place of the result, and
the difference is independent from one element to the next, because each
element is its own reduction. Multiplying every gradient element by
``1 + eps * xi``, ``xi ~ N(0, 1)`` independent, reproduces that size (one ulp
relative: ``eps = 2^-23 ~ 1.2e-7`` for float32) and that shape (independent per
element, zero mean), without changing anything else. The noise is drawn from a
seeded generator, so a "non-deterministic" run is still reproducible.

Residual-branch outputs are the modules with role ``branch_last`` (see
:mod:`detinit.init.roles.vocabulary`); pass ``layers=[...]`` to target others.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from ..contract import check_fields, checked_arguments
from ..init.roles.declared import collect_roles
from ..init.tensor.random import kaiming_normal_
from ..registry import Registry
from ..values import is_number

KNOBS: Registry[dict[str, float | None]] = Registry("symmetry mechanism")  # name -> knobs with their defaults
KNOBS.add("none", {}, "fully deterministic training")
KNOBS.add("gpu", {}, "non-deterministic cuDNN / atomics on CUDA")
KNOBS.add("rounding", {"scale": None}, "gradients x (1 + scale N(0, 1)), scale default the dtype's eps")
KNOBS.add("dropout", {"p": 0.01}, "dropout on residual-branch outputs")
KNOBS.add("weight_noise", {"s": 0.01}, "s x He(fan_out) noise added once to residual-branch weights")
KNOBS.add("activation_noise", {"sigma": 1e-3}, "Gaussian noise on residual-branch outputs")
KNOBS.add("gradient_noise", {"sigma": 1e-3}, "Gaussian noise on the gradient through residual-branch outputs")
MECHANISMS = tuple(KNOBS.names())


@dataclass
class _Determinism:
    """torch's determinism switches, to restore on detach."""

    deterministic: bool
    warn_only: bool
    cudnn_deterministic: bool
    cudnn_benchmark: bool

    @classmethod
    def current(cls) -> _Determinism:
        return cls(
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.backends.cudnn.deterministic,
            torch.backends.cudnn.benchmark,
        )

    def apply(self) -> None:
        torch.use_deterministic_algorithms(self.deterministic, warn_only=self.warn_only)
        torch.backends.cudnn.deterministic = self.cudnn_deterministic
        torch.backends.cudnn.benchmark = self.cudnn_benchmark


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")


@checked_arguments()
def branch_outputs(model: nn.Module, layers: Iterable[str] | None = None) -> list[tuple[str, nn.Module]]:
    """The modules whose outputs are residual-branch outputs (role ``branch_last``), or ``layers``."""
    modules = dict(model.named_modules())
    if layers is not None:
        names = list(layers)
        missing = [n for n in names if n not in modules]
        if missing:
            raise ValueError(f"layers {missing} are not modules of {type(model).__name__}")
    else:
        names = [n for n, r in collect_roles(model).items() if r.role == "branch_last"]
        if not names:
            raise ValueError(
                f"{type(model).__name__} declares no residual-branch layers (role 'branch_last'); "
                "pass layers=[module names] to choose where the mechanism acts"
            )
    return [(n, modules[n]) for n in names]


@dataclass
class Mechanism:
    """A symmetry-breaking mechanism; ``attach`` to a model, ``detach`` to undo.

    Use :func:`breaking` as a context manager, or a trainer option.
    """

    name: str
    knobs: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    layers: list[str] | None = None
    _handles: list[RemovableHandle] = field(default_factory=list, repr=False)
    _saved: _Determinism | None = field(default=None, repr=False)
    _generator: torch.Generator | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        """The name and knobs checked (and the knobs not given filled with their defaults), whether the mechanism
        is built by :func:`make_mechanism` or by hand."""
        check_fields(self)
        defaults = KNOBS.get(self.name)
        unknown = set(self.knobs) - set(defaults)
        if unknown:
            allowed = ", ".join(defaults) or "none"
            raise ValueError(f"mechanism {self.name!r} takes knobs ({allowed}), got {sorted(unknown)}")
        values = {k: v for k, v in (defaults | dict(self.knobs)).items() if v is not None}
        for key, value in values.items():
            if not is_number(value, 0.0, math.inf):
                raise ValueError(f"mechanism {self.name!r}: {key}={value!r} must be a finite number >= 0")
        if self.name == "dropout" and values["p"] >= 1:
            raise ValueError(f"mechanism 'dropout': p={values['p']} must be < 1")
        self.knobs = {k: float(v) for k, v in values.items()}

    @property
    def perturbs_once(self) -> bool:
        """The mechanism is a one-off change of the weights at :meth:`attach` (``weight_noise``), not a
        process: a resumed run, whose checkpoint already holds the perturbed weights, must not attach it again."""
        return self.name == "weight_noise"

    def describe(self) -> str:
        knobs = ", ".join(f"{k}={v:g}" for k, v in self.knobs.items())
        return f"{self.name}({knobs})" if knobs else self.name

    @checked_arguments()
    def attach(self, model: nn.Module) -> Mechanism:
        """Install the mechanism on ``model`` (hooks, flags, or a one-off perturbation)."""
        if self._handles or self._saved is not None:
            raise RuntimeError(f"mechanism {self.describe()} is already attached; detach it first")
        device = _model_device(model)
        self._generator = torch.Generator(device=device).manual_seed(self.seed)
        self._saved = _Determinism.current()
        if self.name == "none":
            if device.type == "cuda":
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
            _Determinism(True, False, True, False).apply()
        elif self.name == "gpu":
            if device.type != "cuda":
                self._saved = None
                raise ValueError(
                    f"symmetry mechanism 'gpu' (non-deterministic cuDNN/atomics) does not exist on device "
                    f"{device.type!r}: CPU arithmetic is deterministic. Use 'rounding', its faithful CPU emulation."
                )
            _Determinism(False, False, False, True).apply()
        elif self.name == "rounding":
            for param in model.parameters():
                if param.requires_grad:
                    self._handles.append(param.register_post_accumulate_grad_hook(self._perturb_grad))
        elif self.name == "weight_noise":
            self._add_weight_noise(model)
        else:  # dropout, activation_noise, gradient_noise act on residual-branch outputs
            for _, module in branch_outputs(model, self.layers):
                self._handles.append(module.register_forward_hook(self._branch_hook))
        return self

    @checked_arguments(at_least={"seed": 0})  # derived seeds (detinit.data.derived_seed) exceed 32 bits
    def reseed(self, seed: int) -> None:
        """Restart the mechanism's random stream (the trainer does this every epoch, for exact resume)."""
        if self._generator is not None:
            self._generator.manual_seed(seed)

    def detach(self) -> None:
        """Remove hooks and restore torch's determinism flags (weight noise stays: it is a perturbation)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        if self._saved is not None:
            self._saved.apply()
            self._saved = None

    @torch.no_grad()
    def _perturb_grad(self, param: torch.Tensor) -> None:
        scale = self.knobs.get("scale") or torch.finfo(param.grad.dtype).eps
        noise = torch.randn(
            param.grad.shape, generator=self._generator, device=param.grad.device, dtype=param.grad.dtype
        )
        param.grad.mul_(noise.mul_(scale).add_(1.0))

    @torch.no_grad()
    def _add_weight_noise(self, model: nn.Module) -> None:
        s = self.knobs["s"]
        for name, module in branch_outputs(model, self.layers):
            weight = getattr(module, "weight", None)
            if not isinstance(weight, torch.Tensor) or weight.dim() < 2:
                raise ValueError(f"weight_noise: {name} ({type(module).__name__}) has no weight matrix to perturb")
            groups = getattr(module, "groups", 1)
            transposed = bool(getattr(module, "transposed", False))
            noise = kaiming_normal_(
                torch.empty_like(weight),
                generator=self._generator,
                mode="fan_out",
                groups=groups,
                transposed=transposed,
            )
            weight.add_(noise, alpha=s)

    def _branch_hook(self, module: nn.Module, inputs: object, output: torch.Tensor) -> torch.Tensor:
        if not module.training:
            return output
        if self.name == "dropout":
            return (
                torch.nn.functional.dropout(output, self.knobs["p"], training=True) if self.knobs["p"] > 0 else output
            )
        sigma = self.knobs["sigma"]
        noise = torch.randn(output.shape, generator=self._generator, device=output.device, dtype=output.dtype)
        if self.name == "activation_noise":
            return output + sigma * noise
        if output.requires_grad:  # gradient_noise: perturb what flows back
            output.register_hook(lambda grad: grad + sigma * noise)
        return output


@checked_arguments()
def make_mechanism(name: str, *, seed: int = 0, layers: list[str] | None = None, **knobs: float) -> Mechanism:
    """Build a mechanism by name with its knobs (defaults in the module docstring).

    >>> make_mechanism("dropout", p=0.05).describe()
    'dropout(p=0.05)'
    """
    return Mechanism(name, dict(knobs), seed, layers)  # checked, and completed with the defaults, by the class

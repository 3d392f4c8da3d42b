"""The hook protocol: what detinit looks for on a model and its modules, in one place.

detinit never guesses from parameter names. A model tells it about its
structure through duck-typed hooks (timm's ``zero_init_last()`` and
``get_classifier()`` are the model), all optional:

================================  ==========================  ==============================================
hook (on which module)            read by                     what it says
================================  ==========================  ==============================================
``detinit_roles() -> dict``       :func:`detinit.initialize`, the roles of its sub-modules, by name relative
(any block)                       symmetry mechanisms,        to the block (:mod:`detinit.init.roles.vocabulary`); a block
                                  diagnostics                 with roles is a residual block to the diagnostics
``detinit_init_(scheme, gen)``    :func:`detinit.initialize`  initialises the module's own direct parameters;
(any module)                                                  gets the :class:`~detinit.init.schemes.Scheme`
                                                              and the generator; returns ``{param: reason}``,
                                                              or ``None`` to let the standard rules apply
``get_classifier() -> Module``    :func:`detinit.initialize`  the output layer (role ``"classifier"``)
(the model)
``forward_features(x)``           ``detinit inspect``         the input -> features map before the classifier
(the model)                                                   (its Jacobian is measured there: a classifier at
                                                              0 has a zero Jacobian)
``detinit_channel_dim: int``      the diagnostics             where channels are in the model's activations
(the model)                                                   (default 1; -1 for ``(batch, tokens, channels)``)
``detinit_buffers_()``            :func:`detinit.initialize`  recomputes the module's constant buffers after
(a module with buffers)           with ``device=``            a meta-device model is materialised (sinusoidal
                                                              positions); norms' running statistics are reset
                                                              without it
``is_residual_gate: bool``        :func:`detinit.initialize`  the module is a residual branch's scalar gate
(a gate module)                                               (``skipinit`` and ``rezero`` refuse models
                                                              without one); it sets itself to the scheme's
                                                              ``residual_gate_value`` in ``detinit_init_``
================================  ==========================  ==============================================

A hook is read as the table says or refused, naming it: a method hook given as data (``detinit_roles = {...}``),
a ``detinit_channel_dim`` that is not an int, an ``is_residual_gate`` that is not a bool or a gate without its
``detinit_init_``, a ``detinit_init_`` on a module without parameters of its own (it would never be called) or one
returning reasons for parameters the module does not have, roles naming the block itself (``""``), and a
``forward_features`` returning anything but one tensor.

detinit writes one attribute back: :func:`detinit.create_model` keeps the
:class:`~detinit.init.InitReport` as ``model.init_report``; the trainer reads it
(the ``branch_last_norm`` scales get their own learning rate) and so do the CLI's
``demo`` and ``inspect``.

:class:`ExampleNet` implements every hook on a residual MLP; its source is the
example to copy:

>>> from detinit import initialize
>>> net = ExampleNet()
>>> report = initialize(net, "zero")  # no norm, no attention, residual gates: the branch's zero on its gate
>>> report["blocks.0.fc1.weight"].rule, report["blocks.0.fc2.weight"].rule, report["head.weight"].rule
('hadamard', 'partial_identity', 'zeros')
>>> report["blocks.0.gate.weight"].reason
'scalar gate = 0 (zero: branch gated off)'
>>> report = initialize(net, "zero", branch_zero="end")  # the zero on the branch's last layer, Fixup's depth scale
>>> report["blocks.0.fc1.weight"].rule, report["blocks.0.fc2.weight"].rule, report["blocks.0.gate.weight"].reason
('scaled_hadamard', 'zeros', 'scalar gate = 1 (branch multiplier starts at 1)')
>>> bool(net(torch.randn(3, 4)).eq(0).all())   # ZerO: a zero classifier, every block the identity
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from .init.schemes import Scheme

ROLES_HOOK = "detinit_roles"
INIT_HOOK = "detinit_init_"
BUFFERS_HOOK = "detinit_buffers_"
CLASSIFIER_HOOK = "get_classifier"
FEATURES_HOOK = "forward_features"
CHANNEL_DIM_ATTRIBUTE = "detinit_channel_dim"
GATE_ATTRIBUTE = "is_residual_gate"
METHOD_HOOKS = (ROLES_HOOK, INIT_HOOK, BUFFERS_HOOK, CLASSIFIER_HOOK, FEATURES_HOOK)  # read as methods: callable_hook


def find_hook(module: nn.Module, name: str) -> Any:
    """``getattr(module, name, None)`` for a hook or flag defined on the module's class or set on the instance,
    without ``nn.Module.__getattr__``'s slow miss (it searches parameters, buffers and sub-modules, then
    raises): most modules have no hook, and :func:`detinit.initialize` asks every module for several.

    >>> find_hook(ExampleBlock(2, 2), ROLES_HOOK) is not None, find_hook(nn.Linear(2, 2), ROLES_HOOK)
    (True, None)
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"find_hook: module must be a torch.nn.Module, got {type(module).__name__}")
    if hasattr(type(module), name) or name in module.__dict__:
        return getattr(module, name, None)
    return None


def callable_hook(module: nn.Module, name: str) -> Any:
    """The hook ``name`` of ``module`` if it has one (``None`` if not); a hook that is there but cannot be called
    (``detinit_roles = {...}`` instead of a method) is an error naming it, not a hook silently skipped.

    >>> callable_hook(ExampleBlock(2, 2), ROLES_HOOK) is not None, callable_hook(nn.Linear(2, 2), ROLES_HOOK)
    (True, None)
    """
    hook = find_hook(module, name)
    if hook is not None and not callable(hook):
        raise TypeError(
            f"{type(module).__name__}.{name} is a {type(hook).__name__}, not a method; the hook protocol "
            f"(detinit.hooks) reads {name} as a method: define it with def, or remove the attribute"
        )
    return hook


def declared_roles(module: nn.Module) -> dict[str, str] | None:
    """The roles ``module`` declares through ``detinit_roles()``, or ``None`` if it has no such hook."""
    hook = callable_hook(module, ROLES_HOOK)
    if hook is None:
        return None
    roles = hook()
    if not isinstance(roles, Mapping) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in roles.items()
    ):
        raise ValueError(
            f"{type(module).__name__}.{ROLES_HOOK}() returned {roles!r}; it must return a dict "
            "{submodule name: role} naming sub-modules of the block (not the block itself, ''), e.g. "
            "{'conv2': 'branch_last'}"
        )
    return dict(roles)


def channel_dim(model: nn.Module) -> int:
    """Where channels are in ``model``'s activations: its ``detinit_channel_dim`` (an int), else 1."""
    dim = find_hook(model, CHANNEL_DIM_ATTRIBUTE)
    if dim is None:
        return 1
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(
            f"{type(model).__name__}.{CHANNEL_DIM_ATTRIBUTE} is {dim!r}; it must be an int, the dimension of the "
            "channels in the model's activations (1 for (N, C, ...), -1 for (batch, tokens, channels))"
        )
    return dim


def is_residual_gate(module: nn.Module) -> bool:
    """Whether ``module`` says it is a residual branch's scalar gate (``is_residual_gate = True``). A gate sets
    itself to the scheme's value, so one without a ``detinit_init_`` method is an error (``skipinit`` would leave
    it at whatever it holds: the branch not gated off), as is a flag that is not a bool."""
    flag = find_hook(module, GATE_ATTRIBUTE)
    if flag is None or flag is False:
        return False
    if flag is not True:
        raise TypeError(f"{type(module).__name__}.{GATE_ATTRIBUTE} is {flag!r}; it must be True or False")
    if callable_hook(module, INIT_HOOK) is None:
        raise TypeError(
            f"{type(module).__name__} says {GATE_ATTRIBUTE} = True but has no {INIT_HOOK}(scheme, generator) "
            "method: a residual gate sets itself to scheme.residual_gate_value there (see detinit.hooks.ExampleGate)"
        )
    return True


class ExampleGate(nn.Module):
    """``alpha * x``: a residual branch's scalar gate (``is_residual_gate`` and ``detinit_init_``)."""

    is_residual_gate = True

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * x

    @torch.no_grad()
    def detinit_init_(self, scheme: Scheme, generator: torch.Generator) -> dict[str, str]:
        self.weight.fill_(scheme.residual_gate_value)
        why = "branch multiplier starts at 1" if scheme.residual_gate_value else f"{scheme.name}: branch gated off"
        return {"weight": f"scalar gate = {scheme.residual_gate_value:g} ({why})"}


class ExampleBlock(nn.Module):
    """``x + gate(fc2(relu(fc1(x))))``, declaring its roles (``detinit_roles``)."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.fc2, self.gate = nn.Linear(width, hidden), nn.Linear(hidden, width), ExampleGate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gate(self.fc2(torch.relu(self.fc1(x))))

    def detinit_roles(self) -> dict[str, str]:
        return {"fc1": "branch", "fc2": "branch_last"}


class ExampleNet(nn.Module):
    """A residual MLP implementing every hook: roles, a self-initialising gate, classifier, features, channels."""

    detinit_channel_dim = 1  # activations are (batch, channels); -1 for (batch, tokens, channels)

    def __init__(self, in_features: int = 4, width: int = 8, hidden: int = 16, depth: int = 2, classes: int = 3):
        super().__init__()
        self.stem = nn.Linear(in_features, width)
        self.blocks = nn.Sequential(*(ExampleBlock(width, hidden) for _ in range(depth)))
        self.head = nn.Linear(width, classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.head

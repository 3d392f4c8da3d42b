"""Model registry: stable names for configs and the CLI.

>>> "zero_resnet18" in list_models()
True
>>> model = create_model("resnet20", num_classes=10, init="zero")
"""

from __future__ import annotations

import contextlib
import fnmatch
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from ..contract import checked_arguments
from ..init import get_scheme, initialize
from ..registry import Registry


@dataclass(frozen=True)
class ModelEntry:
    """A registered constructor and the scheme it is initialised with by default."""

    name: str
    builder: Callable[..., nn.Module]
    default_init: str
    description: str
    default_init_options: Mapping[str, object] = field(default_factory=dict)

    def init_options(self, init: str | None, options: Mapping[str, object] | None) -> dict[str, object]:
        """The scheme options to use: the entry's defaults (for its own scheme) under the caller's.

        Models that reproduce an official network pin ``{"variant": "paper"}``, so they keep the
        official initial weights unless the caller asks otherwise.
        """
        own = init is None or init == self.default_init
        return {**(self.default_init_options if own else {}), **(options or {})}

    def data_kwargs(
        self,
        *,
        num_classes: int | None = None,
        in_chans: int | None = None,
        image_size: int | None = None,
        length: int | None = None,
        vocab_size: int | None = None,
        context: int | None = None,
    ) -> dict[str, int]:
        """The constructor arguments that come from the data (``None`` ones left out).

        A language model takes the vocabulary and the context; an image model the classes and the
        input channels, and the image size where its builder has an ``image_size`` parameter
        (a ViT's patch grid; convolutional networks take any size). 1-D signals of ``length`` go to a model
        that takes ``in_features`` (an MLP: ``in_chans * length`` features); others are refused.

        >>> model_entry("vit").data_kwargs(num_classes=10, in_chans=3, image_size=32, vocab_size=256)
        {'num_classes': 10, 'in_chans': 3, 'image_size': 32}
        >>> model_entry("mnist_mlp").data_kwargs(num_classes=10, in_chans=1, length=40)
        {'num_classes': 10, 'in_features': 40}
        """
        parameters = inspect.signature(self.builder).parameters
        if self.takes_tokens:
            given = {"vocab_size": vocab_size, "context": context}
        elif length is not None:
            if "in_features" not in parameters:
                raise ValueError(
                    f"model={self.name!r} takes 2-D images, but the data are 1-D signals of length {length}; use a "
                    f"model that takes in_features: {', '.join(n for n in MODELS if 'in_features' in _takes(n))}"
                )
            given = {"num_classes": num_classes, "in_features": (in_chans or 1) * length}
        else:
            takes_size = "image_size" in parameters
            given = {"num_classes": num_classes, "in_chans": in_chans, "image_size": image_size if takes_size else None}
        return {key: value for key, value in given.items() if value is not None}

    def check_arguments(self, arguments: Mapping[str, object]) -> None:
        """Check ``arguments`` (a config's ``model_args``) against the contracts of the builder and of the class
        it builds (its return annotation), without building: a wrong type, a value out of range or an argument
        neither takes is an error naming it. What depends on the data (sizes that must divide) is checked when
        the model is built.

        >>> model_entry("mnist_mlp").check_arguments({"hidden": "x"})
        Traceback (most recent call last):
            ...
        detinit.contract.ArgumentError: mnist_mlp: hidden='x' is not supported; hidden must be an int >= 1
        """
        self.builder.check_arguments(**arguments)  # type: ignore[attr-defined]
        own = inspect.signature(self.builder).parameters
        rest = {key: value for key, value in arguments.items() if key not in own}
        built = _built_class(self.builder)
        check = getattr(getattr(built, "__init__", None), "check_arguments", None)
        if rest and check is not None:
            check(**rest)

    @property
    def takes_tokens(self) -> bool:
        """A language model: built from a vocabulary size, fed token ids (not images)."""
        return "vocab_size" in inspect.signature(self.builder).parameters


MODELS: Registry[ModelEntry] = Registry("model")

# scheme options of the networks that reproduce an official ZerO network: the literal Algorithms 1-2
OFFICIAL_ZERO: Mapping[str, object] = {"variant": "paper"}


@checked_arguments()
def register_model(
    name: str, default_init: str, description: str, default_init_options: Mapping[str, object] | None = None
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register ``builder`` under ``name``; its arguments are checked against their annotations
    (:mod:`._contract`) before it runs.

    ``default_init_options``: scheme options for the model's own scheme (see :meth:`ModelEntry.init_options`).
    The scheme and its options are checked here, when the model is registered, not when it is first built.
    """
    get_scheme(default_init, **dict(default_init_options or {}))  # an unknown scheme or option, named now

    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if not callable(builder):
            raise TypeError(
                f"register_model({name!r}): it decorates a builder, a callable returning an nn.Module; got {builder!r}"
            )
        builder = checked_arguments()(builder)  # the builder's own arguments; the class checks the rest
        MODELS.add(
            name, ModelEntry(name, builder, default_init, description, dict(default_init_options or {})), description
        )
        return builder

    return wrap


def _built_class(builder: Callable[..., nn.Module]) -> type | None:
    """The class a builder's return annotation names (``-> ResNet``), or ``None``."""
    function = inspect.unwrap(builder)
    annotation = function.__annotations__.get("return")
    found = function.__globals__.get(annotation) if isinstance(annotation, str) else annotation
    return found if isinstance(found, type) else None


def _takes(name: str) -> Mapping[str, inspect.Parameter]:
    return inspect.signature(MODELS.get(name).builder).parameters


@checked_arguments()
def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a glob ``pattern``."""
    return sorted(n for n in MODELS if fnmatch.fnmatch(n, pattern))


@checked_arguments()
def model_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; a ``ValueError`` with close matches if unknown."""
    return MODELS.get(name)


@checked_arguments()
def create_model(
    name: str,
    *,
    init: str | None = None,
    seed: int = 0,
    init_options: dict | None = None,
    device: torch.device | str | None = None,
    shard: Callable[[nn.Module], object] | None = None,
    **kwargs: object,
) -> nn.Module:
    """Build a registered model and initialise it.

    Args:
        name: a name from :func:`list_models`.
        init: scheme for :func:`detinit.initialize`; default the model's own
            (``zero`` for ZerO ResNets, ``constnet`` for ConstNets, ``kaiming``
            otherwise).
        seed: seed of the initialisation's generator (random schemes).
        init_options: scheme options, e.g. ``{"norm": "paper"}``, over the model's own defaults
            for its own scheme (``{"variant": "paper"}`` for the official ZerO networks).
        device: build the model on the meta device and initialise it straight on ``device`` (no copy
            on the CPU first); the weights are bitwise those of a model built on the CPU and moved there.
        shard: with ``device``, a function applied to the model while it is still on the meta device,
            before it is initialised: FSDP2 sharding (:func:`detinit.train.fsdp.shard_model`), after which
            each rank fills only its shard.
        **kwargs: the constructor's arguments (``num_classes``, ``in_chans``, ``norm``, ...).

    The report of the initialisation is kept as ``model.init_report``.
    """
    entry = model_entry(name)
    try:
        with torch.device("meta") if device is not None else contextlib.nullcontext():
            model = entry.builder(**kwargs)
    except TypeError as err:
        raise ValueError(f"create_model({name!r}): {err}") from None
    if shard is not None:
        if device is None:
            raise ValueError(f"create_model({name!r}, shard=...): sharding happens on the meta device; give device=")
        shard(model)
    options = entry.init_options(init, init_options)
    report = initialize(model, init or entry.default_init, seed=seed, device=device, **options)
    model.init_report = report
    return model

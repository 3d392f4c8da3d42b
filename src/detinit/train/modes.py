"""How a run executes its steps: bf16 autocast, the channels_last memory format, torch.compile; on any device.

Each is a speed/exactness trade, so each is a config key (``amp``, ``channels_last``, ``compile``), ``None``
meaning "chosen for the model" (:func:`resolve_modes`). What each keeps:

* ``channels_last`` stores 4-D activations and kernels as NHWC. The arithmetic stays fp32 but convolutions
  take other kernels, so the numbers differ from NCHW at rounding level; a run is still deterministic.
* ``amp`` runs convolutions and matrix products in bfloat16 (8 significant bits) under ``torch.autocast``,
  except the stem, the first layer, which reads the raw input (:func:`stem_layer`); the loss is taken in
  fp32 and the parameters and optimiser state stay fp32. ZerO's exact promises at step 0 that are made of
  zeros and ones hold exactly (an identity block passes a bf16-rounded copy of its input; a zero branch and
  zero logits stay exactly 0); anything else only up to bf16 rounding. Why the stem stays fp32: where its
  output channels start as copies of one input channel (ZerO's paper rules on a 1-channel image), what
  breaks their symmetry is the small difference between their weight gradients, which bf16 rounds away;
  with the stem in bf16 the paper's ResNet-20 ended 3.8 pp lower on Fashion-MNIST on every seed, with it
  in fp32 1.4 pp lower on average, within the seeds' spread (docs/results.md section 10).
* ``compile`` (``torch.compile``, Inductor) fuses the model's forward and backward; the first steps
  compile (tens of seconds on a CPU), the results differ from eager at rounding level, and a compiled run
  is deterministic on the CPU.

Chosen for a model (:func:`auto_modes`; measured in docs/benchmarks.md and docs/results.md
section 10): a network with 2-D convolutions gets channels_last (fp32 arithmetic, 1.07-1.29x faster on a
CPU); bf16 only when asked, since it changes what ZerO's networks learn (the official ZerO ResNet-20 on
Fashion-MNIST: 72 % in fp32, 25 % in bf16 after 96 steps) though it halves a CPU step where the hardware
computes it natively (:func:`native_bf16`; ``amp: native`` asks for it there and keeps fp32 elsewhere, where
emulated bf16 is 4-10x slower than fp32); nothing is compiled unless asked (on a CPU compilation costs
15-80 s and gains at most 15 %).

>>> modes = Modes(amp=True, channels_last=True)
>>> net = modes.prepare(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Conv2d(8, 8, 3)))
>>> x = modes.inputs(torch.randn(2, 3, 8, 8))
>>> with modes.autocast(x.device):
...     stem, y = net[0](x), net(x)
>>> stem.dtype, y.dtype, y.is_contiguous(memory_format=torch.channels_last)
(torch.float32, torch.bfloat16, True)
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Modes:
    """The execution modes of a run (all off: fp32, NCHW, eager)."""

    amp: bool = False
    channels_last: bool = False
    compile: bool = False

    def apply_(self, model: nn.Module) -> nn.Module:
        """Make ``model`` run in these modes, in place: its 4-D parameters and buffers converted to channels_last
        (the parameters stay the same objects: an optimiser built before keeps them), and under ``amp`` its stem
        (:func:`stem_layer`) kept in fp32. Returns ``model``."""
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        stem = stem_layer(model) if self.amp else None
        if stem is not None:
            keep_fp32_(stem)
        return model

    def compiled(self, net: nn.Module) -> nn.Module:
        """The module to call: ``torch.compile(net)`` if set (it shares ``net``'s parameters), else ``net``."""
        return torch.compile(net) if self.compile else net

    def prepare(self, model: nn.Module) -> nn.Module:
        """:meth:`apply_` then :meth:`compiled`: a model ready to train in these modes."""
        return self.compiled(self.apply_(model))

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """A batch as the model takes it: 4-D images in channels_last if set; anything else unchanged."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        """bfloat16 autocast on ``device``'s type if ``amp``, else nothing."""
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16) if self.amp else contextlib.nullcontext()

    @property
    def name(self) -> str:
        """``"fp32"``, ``"bf16+cl"``, ``"bf16+cl+compile"``...: the keys of :data:`MODE_NAMES`."""
        return "+".join(["bf16" if self.amp else "fp32"] + ["cl"] * self.channels_last + ["compile"] * self.compile)


def stem_layer(model: nn.Module) -> nn.Module | None:
    """The layer that reads the model's raw input: the first convolution or Linear in module order (the stem
    of every registered image model, a ViT's patch embedding), or ``None`` where an embedding comes first
    (a language model reads token ids: its first matrix product reads embeddings, not the input)."""
    for module in model.modules():
        if isinstance(module, nn.Embedding):
            return None
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            return module
    return None


def keep_fp32_(module: nn.Module) -> nn.Module:
    """Run ``module`` in fp32 under autocast: its floating-point inputs cast to fp32 and autocast off inside
    its forward. Its class becomes a subclass of the same name whose ``forward`` does that (so a
    ``copy.deepcopy`` of the model computes with the copy's own weights); its parameters, its name in the
    state dict and ``isinstance`` checks are unchanged; the model can no longer be pickled whole
    (``torch.save(model)``: save its ``state_dict()``). Idempotent."""
    cls = type(module)
    if not getattr(cls, "_detinit_fp32", False):
        module.__class__ = _FP32_CLASSES.get(cls) or _FP32_CLASSES.setdefault(cls, _fp32_class(cls))
    return module


def _fp32_class(cls: type[nn.Module]) -> type[nn.Module]:
    def forward(self: nn.Module, *args: object, **kwargs: object) -> object:
        device = next(a.device for a in args if isinstance(a, torch.Tensor))
        inputs = (a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)
        with torch.autocast(device_type=device.type, enabled=False):
            return cls.forward(self, *inputs, **kwargs)

    namespace = {"forward": forward, "_detinit_fp32": True, "__module__": cls.__module__, "__doc__": cls.__doc__}
    return type(cls.__name__, (cls,), namespace)


_FP32_CLASSES: dict[type, type] = {}  # a layer class -> its fp32 subclass, built once


FP32 = Modes()  # fp32, NCHW, eager: what every bitwise comparison runs in

MODE_NAMES: dict[str, Modes] = {
    modes.name: modes
    for modes in (
        FP32,
        Modes(channels_last=True),
        Modes(compile=True),
        Modes(amp=True),
        Modes(amp=True, channels_last=True),
        Modes(amp=True, channels_last=True, compile=True),
    )
}


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively: a CUDA GPU with bf16, a CPU with AVX512-BF16 or AMX
    tiles (elsewhere bf16 is emulated, and slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private: absent is "no"
        return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)
    return False


def auto_modes(model: nn.Module, *, sharded: bool = False) -> Modes:
    """The modes chosen for ``model`` on ``device`` when the config leaves them unset (see the module's
    docstring for why): channels_last for a network with 2-D convolutions, unless it is sharded with FSDP2
    (its shards are row blocks); fp32; eager, on every device."""
    convolutional = any(isinstance(m, nn.Conv2d) for m in model.modules())
    return Modes(channels_last=convolutional and not sharded)


NATIVE = "native"  # the ``amp`` value "bf16 where the device computes it natively, fp32 elsewhere"


def resolve_modes(
    asked: Mapping[str, bool | str | None],
    model: nn.Module,
    started: Mapping[str, bool] | None = None,
    *,
    sharded: bool = False,
    device: torch.device | None = None,
) -> Modes:
    """The modes of a run: each key of ``asked`` (``amp``, ``channels_last``, ``compile``) as set, and an
    unset one (``None``) as :func:`auto_modes` chooses, or, for a run that resumes, as it ran before
    (``started``: the modes recorded when it started; a key missing there was off). ``amp="native"`` is bf16
    where ``device`` computes it natively (:func:`native_bf16`; emulated bf16 is 4-10x slower than fp32) and
    fp32 elsewhere; a run that resumes keeps what it started in, so its arithmetic never changes mid-run.

    >>> resolve_modes({"amp": False, "channels_last": None, "compile": None}, nn.Linear(2, 2))
    Modes(amp=False, channels_last=False, compile=False)
    >>> cpu = torch.device("cpu")
    >>> resolve_modes({"amp": "native"}, nn.Linear(2, 2), device=cpu).amp == native_bf16(cpu)
    True
    """
    chosen = asdict(auto_modes(model, sharded=sharded)) if started is None else {key: False for key in asdict(Modes())}
    chosen |= dict(started or {})
    if asked.get("amp") == NATIVE and started is None:
        chosen["amp"] = native_bf16(device if device is not None else torch.device("cpu"))
    unset = (None, NATIVE)
    return Modes(**{key: chosen[key] if asked.get(key) in unset else bool(asked[key]) for key in chosen})

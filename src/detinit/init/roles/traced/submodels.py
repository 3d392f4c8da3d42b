"""Parts of a model its example input never reaches, traced on their own: :func:`trace_unreached_parts`.

A multimodal model traced on text alone never runs its vision or audio tower (a Llava's CLIP encoder, a
Gemma 3's SigLIP with its attention-pooling ``probe``), so nothing is known about their layers; a speech model
with a CTC head never reads its encoder's mask embedding, which only the encoder's own input reaches. Where
such a part is itself a model its library describes (a Hugging Face ``PreTrainedModel`` with its own config and
``main_input_name``), it is traced on its own example input (:func:`~detinit.init.roles.example_inputs.example_for`)
and what that finds is merged under its name. Its output is not the model's output, so the tower's own output
layer is not a ``"classifier"``; and the norm settling that needs the whole model's forward pass
(:mod:`detinit.init.apply.embedding_norm`) is not asked of it.

>>> import torch
>>> from torch import nn
>>> class Towers(nn.Module):  # the text path never calls the vision tower
...     def __init__(self):
...         super().__init__()
...         self.text, self.vision = nn.Linear(4, 4), nn.Linear(4, 4)
...     def forward(self, x):
...         return self.text(x)
>>> model = Towers()
>>> traced = trace_roles(model, torch.ones(2, 4))
>>> trace_unreached_parts(model, traced)  # a plain module says nothing of its inputs: nothing to trace
[]
"""

from __future__ import annotations

from torch import nn

from ..example_inputs import example_for
from ..trace import TraceError
from . import trace_roles
from .result import TracedRoles

OUTPUT_ROLES = ("classifier", "classifier_norm")


def trace_unreached_parts(model: nn.Module, traced: TracedRoles) -> list[str]:
    """Trace each outermost submodule of ``model`` that its library describes and whose parameters the
    forward pass behind ``traced`` never read, or whose own parameter it never read (a wav2vec 2.0 inside a
    CTC head: its mask embedding is read only where its own input masks frames); merge what is found into
    ``traced`` (in place, under the submodule's name; what the whole model's trace found wins) and return the
    names of the parts traced."""
    parts: list[str] = []
    for name, module in model.named_modules():
        if not name or any(name.startswith(done + ".") for done in parts):
            continue
        own = [f"{name}.{p}" for p, _ in module.named_parameters()]
        direct = [f"{name}.{p}" for p in module._parameters]
        reached = any(p in traced.used for p in own)
        if not own or (reached and all(p in traced.used for p in direct)):
            continue
        found = example_for(module)
        if found is None or found.inputs is None:
            continue
        try:
            part = trace_roles(module, found.inputs, output_layers=False)
        except TraceError as err:
            traced.notes.append(f"{name} is not reached by the example input and could not be traced alone: {err}")
            continue
        traced.merge(part, prefix=f"{name}.")
        parts.append(name)
    return parts

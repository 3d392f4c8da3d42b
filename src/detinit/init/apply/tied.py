"""Tied weights: a parameter shared by several modules is written once, so they must agree on its rule."""

from __future__ import annotations

from collections.abc import Mapping

from ..roles.vocabulary import RoleSource
from ..schemes.base import Scheme
from .plan import Entry


def check_tied(
    entries: list[Entry],
    first: int,
    name: str,
    module_type: str,
    role: str,
    roles: Mapping[str, RoleSource],
    scheme: Scheme,
) -> None:
    """A tied weight is initialised once: refuse it when the modules sharing it want different rules."""
    record = entries[first]
    if record.role == role:
        return
    table_and_output = {record.role, role} == {"default", "classifier"} and "Embedding" in (
        record.module_type,
        module_type,
    )
    if table_and_output:
        norms = [n for n, r in roles.items() if r.role == "classifier_norm"]
        zeroes = scheme.policy.zeroes_classifier
        if not zeroes or norms:
            where = f"; the output's zero is on {norms[0]}'s scale" if norms and zeroes else ""
            entries[first] = record._replace(note=f"{record.note}; also the output layer {name} (tied){where}")
            return
        raise ValueError(
            f"{name} ({module_type}, role 'classifier') is tied to {record.name} ({record.module_type}, the token "
            f"embedding); scheme {scheme.name!r} starts the output layer at 0, which would zero every token. No norm "
            "was found before the output layer to carry that zero: untie the weights, give the norm before the "
            "output layer the role 'classifier_norm', or pass example_inputs= so that it can be traced"
        )
    raise ValueError(
        f"{name} is tied to {record.name}: the modules sharing it have different roles ({module_type} "
        f"{role!r}, {record.module_type} {record.role!r}), and a tied weight gets one rule; give both the same "
        "role in roles=, or untie the weights"
    )

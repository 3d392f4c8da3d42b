"""Tied weights: a parameter shared by several modules is written once, so they must agree on its rule."""

from __future__ import annotations

from collections.abc import Mapping

from ..roles.vocabulary import RoleSource
from ..schemes.base import Scheme
from ..schemes.rule import ParamRule
from .plan import Entry
from .report import UNKNOWN

KEEP, TAKE = "keep", "take"


def check_tied(
    entries: list[Entry],
    first: int,
    name: str,
    module_type: str,
    role: str,
    rule: ParamRule | None,
    roles: Mapping[str, RoleSource],
    scheme: Scheme,
    *,
    table: bool,
) -> str:
    """Whether a tied parameter keeps the rule of the module that holds it first (:data:`KEEP`) or takes
    ``rule``, the one module ``name`` would give it (:data:`TAKE`, when the first knows none, or is the output
    layer and ``name`` the token table); refuse it when both modules know a rule and the rules differ.

    ``table``: the parameter is read as a token table (an ``nn.Embedding`` or a subclass, or traced as an
    ``F.embedding`` weight); a table tied to the output layer keeps the table's rule, and a scheme that starts
    the output at 0 needs a norm before it to carry that zero (role ``classifier_norm``).
    """
    record = entries[first]
    if record.role == role:
        return KEEP
    if table and {record.role, role} == {"default", "classifier"}:
        norms = [n for n, r in roles.items() if r.role == "classifier_norm"]
        zeroes = scheme.policy.zeroes_classifier
        if not zeroes or norms:
            if record.role == "classifier" and rule is not None:
                return TAKE  # the output layer holds it first (Jina's lm_head before its encoder): the table's rule
            where = f"; the output's zero is on {norms[0]}'s scale" if norms and zeroes else ""
            entries[first] = record._replace(note=f"{record.note}; also the output layer {name} (tied){where}")
            return KEEP
        raise ValueError(
            f"{name} ({module_type}, role 'classifier') is tied to {record.name} ({record.module_type}, the token "
            f"embedding); scheme {scheme.name!r} starts the output layer at 0, which would zero every token. No norm "
            "was found before the output layer to carry that zero: untie the weights, give the norm before the "
            "output layer the role 'classifier_norm', or pass example_inputs= so that it can be traced"
        )
    if record.rule == UNKNOWN and rule is not None:
        return TAKE
    if rule is None or rule.rule == record.rule:
        also = f"; also {name} ({module_type}, role {role!r}, tied)"
        entries[first] = record._replace(note=record.note + also)
        return KEEP
    raise ValueError(
        f"{name} is tied to {record.name}: the modules sharing it have different roles ({module_type} "
        f"{role!r}, rule {rule.rule!r}; {record.module_type} {record.role!r}, rule {record.rule!r}), and a tied "
        "weight gets one rule; give both the same role in roles=, or untie the weights"
    )

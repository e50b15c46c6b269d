"""`evaluate(rules, state, now, calendar)`: pure. No I/O, no clock reads; the same inputs
give the same output, which is why desired state can be re-derived on every tick and at
start-up instead of being remembered."""

from __future__ import annotations

from collections.abc import Sequence

from edge.rules.calendar import InstitutionCalendar
from edge.rules.model import Notice, RuleOutput, SiteState
from edge.rules.registry import RuleConfig


def evaluate(rules: Sequence[RuleConfig], state: SiteState, now: float,
             calendar: InstitutionCalendar) -> RuleOutput:
    """Every rule's proposals, alarms and notices, in rule order.

    While the clock is not synced, rules that depend on the time of day (`time_based`) are
    paused and say so with a `rules.paused` notice; the others still run.
    """
    out = RuleOutput()
    for rule in rules:
        if rule.time_based and not state.synced:
            out.notices.append(Notice("rules.paused", None, rule.id,
                                      {"why": "clock not synced"}))
            continue
        out.extend(rule.evaluate(state, now, calendar))
    return out

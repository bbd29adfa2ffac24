"""The worker's job table (fupin_worker.kinds): every scheduled kind has a handler, each kind is in it once,
and kinds are named `domain.verb` with the domain in the singular."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fupin_worker import kinds


def _ticks() -> list[datetime]:
    """A tick every 13 hours over two years, so every daily, monthly, quarterly and annual entry fires."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [start + timedelta(hours=13 * i) for i in range(2 * 365 * 24 // 13)]


def test_every_scheduled_kind_has_a_handler_and_each_entry_schedules_its_own_kind() -> None:
    seen: dict[str, set[str]] = {}
    for row in kinds.KINDS:
        for entry in row.schedule:
            for now in _ticks():
                for due in entry.due(now):
                    seen.setdefault(entry.name, set()).add(due.kind)
                    assert due.kind == row.kind, f"{entry.name!r} (under {row.kind}) schedules {due.kind}"
                    assert due.kind in kinds.HANDLERS
    # Every entry fired at least once over the two years: a due function that never yields is dead code.
    assert set(seen) == {e.name for e in kinds.SCHEDULE}
    assert len(kinds.SCHEDULE) >= 7


def test_each_kind_once_with_a_handler() -> None:
    names = [row.kind for row in kinds.KINDS]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    assert set(kinds.HANDLERS) == set(names)
    assert all(callable(h) for h in kinds.HANDLERS.values())


# The domains that run jobs, each named once, in the singular (a new domain adds its name here).
DOMAINS = {"assessment", "audit", "bank", "dividend", "loan", "subsidy"}


def test_kinds_are_domain_dot_verb_with_the_domain_in_the_singular() -> None:
    for name in kinds.HANDLERS:
        domain, _, verb = name.partition(".")
        assert domain in DOMAINS, f"{name}: a domain named once, in the singular, like subsidy.* and dividend.*"
        assert re.fullmatch(r"[a-z_]+", verb), name

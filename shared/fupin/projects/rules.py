"""Pure lifecycle rules for projects (W-14 in domain-detail.md)."""

from __future__ import annotations

from fupin.projects.schemas import Status

# The main line, in order; a project moves one step at a time, never skipping.
MAIN_LINE: tuple[Status, ...] = (
    Status.proposed, Status.in_library, Status.approved, Status.tendering,
    Status.in_progress, Status.completed, Status.accepted, Status.closed,
)
TERMINAL = frozenset({Status.closed, Status.cancelled})
# Money may come in and go out once the project is approved and until it is closed.
FUNDABLE = frozenset({Status.approved, Status.tendering, Status.in_progress, Status.completed, Status.accepted})


def next_on_main_line(status: Status) -> Status | None:
    if status not in MAIN_LINE:
        return None
    i = MAIN_LINE.index(status)
    return MAIN_LINE[i + 1] if i + 1 < len(MAIN_LINE) else None


def may_move(current: Status, to: Status, suspended_from: Status | None) -> bool:
    """proposed → … → closed one step at a time; suspend or cancel from any open state; a suspended
    project resumes only to the state it was suspended from (or is cancelled)."""
    if current in TERMINAL:
        return False
    if to is Status.cancelled:
        return True
    if current is Status.suspended:
        return to is suspended_from
    if to is Status.suspended:
        return True
    return next_on_main_line(current) is to


def allowed_moves(current: Status, suspended_from: Status | None) -> list[Status]:
    """What `may_move` admits from `current`, in the order a screen offers it: the next step (or the
    resumption), then suspend, then cancel. Notices, bids and acceptance details are checked on the move."""
    candidates = [next_on_main_line(current), suspended_from, Status.suspended, Status.cancelled]
    out: list[Status] = []
    for to in candidates:
        if to is not None and to not in out and may_move(current, to, suspended_from):
            out.append(to)
    return out

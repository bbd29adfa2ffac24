"""Only `fupin.ledger` writes ledger tables: other domains hand it SELECTs of what to post."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WRITES = re.compile(r"(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(journal_line|journal_entry|ledger_account)\b"
                    r"|insert\((JournalLine|JournalEntry|LedgerAccount)\)", re.IGNORECASE)


def test_no_module_outside_the_ledger_writes_ledger_tables():
    offenders = []
    for base in ("shared/fupin", "services"):
        for path in (ROOT / base).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith(("shared/fupin/ledger/", "shared/fupin/migrations/")):
                continue
            if WRITES.search(path.read_text(encoding="utf-8")):
                offenders.append(rel)
    assert offenders == []

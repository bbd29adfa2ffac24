"""Only `fupin.ledger` writes ledger tables and spells account codes: other domains hand it SELECTs,
`Posting`s or `AccountSpec`s of what to post (issue 15: one way to post money)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LEDGER = "shared/fupin/ledger/"
TABLES = r"(journal_line|journal_entry|ledger_account)"
MODELS = r"(JournalLine|JournalEntry|LedgerAccount)"
WRITES = re.compile(
    rf"(INSERT\s+INTO|UPDATE|DELETE\s+FROM|COPY|TRUNCATE)\s+{TABLES}\b"  # SQL text
    rf"|\b(insert|update|delete)\(\s*{MODELS}\b"  # Core/ORM statements
    rf"|\b{MODELS}\("  # ORM objects (session.add)
    r"|fupin_ledger_post_lines\s*\(",  # a call of the database's posting function
    re.IGNORECASE,
)
KINDS = "source|finance_bureau|township_finance|credit_coop|household|enterprise|operator|project|implementer"
CODES = re.compile(
    rf"'({KINDS}):'\s*\|\|"  # SQL: 'household:' || id || ':subsidy'
    r"|concat_ws\(\s*':'"  # SQL: concat_ws(':', 'household', id, 'dividend')
    rf"|f[\"']({KINDS}):\{{[^\"']*\}}:\w+[\"']"  # Python: f"household:{id}:subsidy"
)


def _sources() -> list[tuple[str, str]]:
    out = []
    for base in ("shared/fupin", "services"):
        for path in (ROOT / base).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if not rel.startswith((LEDGER, "shared/fupin/migrations/")):
                out.append((rel, path.read_text(encoding="utf-8")))
    return out


def test_no_module_outside_the_ledger_writes_ledger_tables():
    assert [rel for rel, src in _sources() if WRITES.search(src)] == []


def test_no_module_outside_the_ledger_spells_an_account_code():
    assert [rel for rel, src in _sources() if CODES.search(src)] == []


def test_the_patterns_catch_what_they_forbid():
    for bad in ("INSERT INTO journal_line (entry_id) VALUES (1)", "update ledger_account set balance = 0",
                "session.add(JournalEntry(id=x))", "insert(LedgerAccount).values()",
                "SELECT fupin_ledger_post_lines(a, b, c, d)"):
        assert WRITES.search(bad), bad
    for bad in ("'household:' || CAST(x AS text)", "concat_ws(':', 'household', x, 'dividend')",
                'f"credit_coop:{township}.{coop}:subsidy"'):
        assert CODES.search(bad), bad
    assert not WRITES.search("select(LedgerAccount.balance).join(JournalLine)")
    assert not CODES.search('f"project:{project.id}:{movement}:{fund_id}"')  # a reference, not a code

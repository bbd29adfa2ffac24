"""deploy/SCALING.md cites files that exist and job keys in the format the code writes."""

from __future__ import annotations

import re
from pathlib import Path

from fupin.assessment.jobs import monthly_key
from fupin.subsidies.service import job_key

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "deploy" / "SCALING.md").read_text(encoding="utf-8")


def test_every_cited_file_exists():
    cited = set(re.findall(r"(?<![\w./])((?:deploy|bench|docs|shared|services|tests|openapi)/[\w./-]+\.\w+)", DOC))
    assert cited, "the note cites its sources"
    for path in cited:
        assert (ROOT / path).exists(), path


def test_job_keys_are_written_as_the_code_writes_them():
    assert f"`{job_key('settlement', '520123100000', '2026Q3')}`" in DOC
    assert f"`{monthly_key('520123000000', 2026, 11)}`" in DOC
    assert "subsidies.settle" not in DOC


def test_no_refresh_tokens_are_promised_and_redis_outages_are_covered():
    assert "+ refresh" not in DOC
    assert "no refresh tokens" in DOC
    assert "Redis is not on the write path" in DOC
    assert "/readyz" in DOC

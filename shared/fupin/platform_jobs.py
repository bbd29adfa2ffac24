"""Platform job kinds: the audit-chain verification (the example job) and audit retention."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fupin import jobs
from fupin.audit import service as audit
from fupin.auth.principal import SYSTEM

AUDIT_VERIFY = "audit.verify"


@jobs.handler(AUDIT_VERIFY)
async def verify_audit_chain(session: AsyncSession, run: jobs.JobRun) -> dict[str, Any]:
    report = await audit.verify_chain(session)
    # The verification itself is an audited event: one row per run, so a run done twice would show.
    await audit.record(
        session, SYSTEM, action="audit.verified", entity="job", entity_id=run.key,
        after={"ok": report.ok, "rows": report.rows},
    )
    return {"ok": report.ok, "rows": report.rows, "first_bad_id": report.first_bad_id, "reason": report.reason}

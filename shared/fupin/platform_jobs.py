"""Platform job kinds: verifying the audit chains (the example job)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fupin import jobs
from fupin.audit import sealer
from fupin.audit import service as audit
from fupin.auth.principal import SYSTEM
from fupin.settings import get_settings

AUDIT_VERIFY = "audit.verify"


async def verify_audit_chains(session: AsyncSession, run: jobs.JobRun) -> dict[str, Any]:
    """Seal what is pending, then verify: a county's chain for a county's run, every chain for a platform run."""
    key = get_settings().audit_checkpoint_key
    county = audit.county_chain(run.area_code) if run.area_code else None
    for chain in [county] if county is not None else await sealer.unsealed_chains(session):
        while await sealer.seal_chain(session, county=chain, key=key) == sealer.SEAL_BATCH:
            pass
    report = await sealer.verify(session, key=key, county=county)
    # The verification itself is an audited event: one row per run, so a run done twice would show.
    await audit.record(
        session, SYSTEM, action="audit.verified", entity="job", entity_id=run.key,
        area_code=run.area_code or None, after={"ok": report.ok, "rows": report.rows},
    )
    return report.as_dict()

"""Cron entry of the platform: verify the audit chains once a day."""

from __future__ import annotations

from datetime import datetime

from fupin.platform_jobs import AUDIT_VERIFY
from fupin_worker.schedule import Due


def daily_audit_verify(now: datetime) -> list[Due]:
    return [Due(AUDIT_VERIFY, f"{AUDIT_VERIFY}:daily:{now.date().isoformat()}", {})]

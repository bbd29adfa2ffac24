"""Every domain router, in one list; main.py includes them."""

from __future__ import annotations

from fastapi import APIRouter

from fupin_api.routes import (
    areas,
    assessment,
    audit,
    auth,
    bank,
    dividends,
    documents,
    field,
    health,
    households,
    insurance,
    jobs,
    ledger,
    loans,
    me,
    monitoring,
    pairing,
    pairing_activity,
    projects,
    subsidies,
    users,
)

ROUTERS: list[APIRouter] = [
    health.router,
    auth.router,
    me.router,
    areas.router,
    users.router,
    audit.router,
    jobs.router,
    households.router,
    loans.router,
    bank.router,
    assessment.router,
    dividends.router,
    pairing.router,
    pairing_activity.router,
    projects.router,
    ledger.router,  # issue 4
    subsidies.router,  # issue 4
    monitoring.router,  # issue 17
    insurance.router,  # issue 17
    field.router,  # issue 20
    documents.router,  # issue 20
]

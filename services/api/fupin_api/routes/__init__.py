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
    meta,
    monitoring,
    pairing,
    pairing_activity,
    projects,
    subsidies,
    users,
)

# Matched in this order, one route after another (FastAPI ≥0.160 spends ~10 µs on each route it tries), so
# the routers of the hot reads come first: `GET /households/{id}` was the 23rd route tried (a fifth of the
# request's CPU), now the 11th. No route shadows another (tests/platform/test_openapi.py checks it), so
# the order changes nothing else; the OpenAPI document sorts its keys. The bank's signed posts, the busiest
# writes (a bank's stream of repayments), come right after the hot reads: `POST /bank/loan-events` was the
# 92nd route tried, now the 39th.
ROUTERS: list[APIRouter] = [
    areas.router,
    households.router,
    loans.router,
    bank.router,
    pairing.router,
    projects.router,
    health.router,
    auth.router,
    me.router,
    users.router,
    audit.router,
    jobs.router,
    assessment.router,
    dividends.router,
    pairing_activity.router,
    ledger.router,  # issue 4
    subsidies.router,  # issue 4
    monitoring.router,  # issue 17
    insurance.router,  # issue 17
    field.router,  # issue 20
    documents.router,  # issue 20
    meta.router,  # issue 14
]

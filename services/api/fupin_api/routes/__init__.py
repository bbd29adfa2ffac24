"""Every domain router, in one list; main.py includes them."""

from __future__ import annotations

from fastapi import APIRouter

from fupin_api.routes import areas, audit, auth, health, jobs, ledger, subsidies, users

ROUTERS: list[APIRouter] = [
    health.router,
    auth.router,
    areas.router,
    users.router,
    audit.router,
    jobs.router,
    ledger.router,  # issue 4
    subsidies.router,  # issue 4
]

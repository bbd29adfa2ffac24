"""The floors routes are compared with: a bare FastAPI endpoint, one raw asyncpg primary-key fetch, and the
raw writes of one bank repayment (`/bank-floor`).

Run by bench/run.py as `uvicorn bench.floor_app:app` with BENCH_DSN set to a plain postgresql:// DSN.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg
from fastapi import FastAPI, HTTPException, Request


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(os.environ["BENCH_DSN"], min_size=10, max_size=10)
    try:
        yield
    finally:
        await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/bare")
async def bare() -> dict[str, bool]:
    return {"ok": True}


@app.get("/pk/{code}")
async def pk(code: str) -> dict[str, Any]:
    row = await app.state.pool.fetchrow("SELECT code, name, level, parent_code, population FROM area WHERE code = $1", code)
    if row is None:
        raise HTTPException(404)
    return dict(row)


@app.post("/bank-floor")
async def bank_floor(request: Request) -> dict[str, Any]:
    """The same writes as one signed repayment through the API, in one transaction, with nothing else:
    the event row, the repayment row, the balance update and the audit row."""
    raw = await request.body()
    event = json.loads(raw)
    digest = hashlib.sha256(raw).hexdigest()
    async with app.state.pool.acquire() as conn, conn.transaction():
        loan = await conn.fetchrow("UPDATE loan SET outstanding = outstanding - $2, updated_at = now() "
                                   "WHERE application_id = $1 RETURNING id, area_code", uuid.UUID(event["application_id"]),
                                   Decimal(event["amount"]))
        if loan is None:
            raise HTTPException(404)
        await conn.execute("INSERT INTO bank_loan_event (id, client_id, event_id, body_hash, kind, area_code, county, "
                           "application_id, status, payload, received_at) VALUES ($1, 'bench-bank', $2, $3, "
                           "'repayment', '530000000000', '530000', $4, 'applied', $5::jsonb, now())",
                           uuid.uuid4(), event["event_id"], digest, uuid.UUID(event["application_id"]), raw.decode())
        await conn.execute("INSERT INTO loan_repayment (id, loan_id, area_code, amount, paid_on, source_event_id, "
                           "recorded_at, county) VALUES ($1, $2, $3, $4, $5, $6, now(), $7)", uuid.uuid4(), loan["id"],
                           loan["area_code"], Decimal(event["amount"]), date.fromisoformat(event["on"]),
                           event["event_id"], loan["area_code"][:6])
        await conn.execute("INSERT INTO audit_event (occurred_at, actor_name, role, area_code, county_code, action, "
                           "entity, entity_id, result) VALUES (now(), 'bank:bench-bank', 'bank', $1, $2, "
                           "'bank.loan_events', 'bank_client', 'bench-bank', 'ok')", loan["area_code"],
                           loan["area_code"][:6])
    return {"results": [{"event_id": event["event_id"], "status": "applied", "http_status": 200}]}

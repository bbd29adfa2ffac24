"""The floors every route is compared with: a bare FastAPI endpoint and one raw asyncpg primary-key fetch.

Run by bench/run.py as `uvicorn bench.floor_app:app` with BENCH_DSN set to a plain postgresql:// DSN.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI, HTTPException


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

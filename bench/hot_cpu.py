"""CPU per hot read, in-process: the API's hot routes with the dispatcher (`fupin_api.hot`) on and off, and
the raw asyncpg primary-key floor (bench/floor_app.py), each driven through ASGI without sockets.

    python -m bench.hot_cpu [--townships 20 --households 10000 --loans 20000] [--requests 1000] [--rounds 3]

On a shared machine req/s move by ±25 % from run to run; the process CPU a request costs moves much less, and
with 2 cores busy, CPU per request is what bounds req/s. Each figure is the median of `--rounds` runs of
`--requests` sequential requests, the modes alternating; the log lines go to /dev/null through the production
logging set-up (their writer thread's CPU is counted: it is the process's). The database server's CPU is not.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from typing import Any

import httpx

from bench.run import SECRET, _admin, admin_url, plain_dsn, seed, server_env
from fupin.migrate import upgrade


async def _cpu_per_request(client: httpx.AsyncClient, urls: list[str], headers: dict[str, str], n: int) -> float:
    t0 = time.process_time()
    for k in range(n):
        response = await client.get(urls[k % len(urls)], headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"{urls[k % len(urls)]}: {response.status_code} {response.text[:200]}")
    return (time.process_time() - t0) / n * 1000


async def measure(owner: str, ctx: Any, args: argparse.Namespace) -> list[tuple[str, float, float]]:
    os.environ.update(server_env(owner, BENCH_DSN=plain_dsn(owner)))
    from fupin import logs
    from fupin.settings import get_settings

    get_settings.cache_clear()
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115, ASYNC230 - the access lines, as a log collector would take them
    try:
        logs.configure_logging("INFO")
    finally:
        sys.stdout = sys.__stdout__
    from bench import floor_app
    from fupin_api.main import create_app

    api = create_app(get_settings())
    out: list[tuple[str, float, float]] = []
    async with api.router.lifespan_context(api), floor_app.lifespan(floor_app.app):
        api_client = httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://bench")
        floor_client = httpx.AsyncClient(transport=httpx.ASGITransport(app=floor_app.app), base_url="http://bench")
        login = await api_client.post("/auth/token", data={"username": ctx.users[0], "password": "bench-password-1"})
        login.raise_for_status()
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        routes = {
            "GET /areas/{code}": [f"/areas/{v}" for v in ctx.villages],
            "GET /households/{id}": [f"/households/{h}" for h in ctx.households],
            "GET /areas?level=village&limit=50": [f"/areas?level=village&limit=50&cursor={v}"
                                                  for v in ctx.villages[: max(1, len(ctx.villages) - 60)]],
            "GET /households?area={village}&limit=50": [f"/households?area={v}&limit=50" for v in ctx.villages],
        }
        floor_urls = [f"/pk/{v}" for v in ctx.villages]
        await _cpu_per_request(floor_client, floor_urls, {}, 200)  # warm-up
        floor = statistics.median([await _cpu_per_request(floor_client, floor_urls, {}, args.requests)
                                   for _ in range(args.rounds)])
        out.append(("raw asyncpg PK fetch (floor)", floor, floor))
        for name, urls in routes.items():
            by_mode: dict[bool, list[float]] = {False: [], True: []}
            for on in (False, True):
                api.state.hot_reads = on
                await _cpu_per_request(api_client, urls, auth, 100)  # warm-up: caches, prepared statements
            for _ in range(args.rounds):
                for on in (False, True):
                    api.state.hot_reads = on
                    by_mode[on].append(await _cpu_per_request(api_client, urls, auth, args.requests))
            out.append((name, statistics.median(by_mode[False]), statistics.median(by_mode[True])))
            print(f"{name}: FastAPI route {out[-1][1]:.3f} ms, dispatcher {out[-1][2]:.3f} ms CPU per request "
                  f"(floor {floor:.3f} ms)")
        await api_client.aclose()
        await floor_client.aclose()
    logs.stop_writer()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.hot_cpu", description=__doc__.splitlines()[0] if __doc__ else "")
    p.add_argument("--townships", type=int, default=20)
    p.add_argument("--households", type=int, default=10_000)
    p.add_argument("--loans", type=int, default=20_000)
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    args.users, args.import_households, args.screening_rows = 1, 0, 0
    admin = admin_url()
    name = f"fupin_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
    from sqlalchemy.engine import make_url

    owner = make_url(admin).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(owner)
        os.environ["FUPIN_BANK_SECRET_KEY"] = SECRET
        ctx, _seeded, _pg = asyncio.run(seed(owner, args))
        rows = asyncio.run(measure(owner, ctx, args))
    finally:
        asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print("\n| route | FastAPI route, ms CPU | dispatcher, ms CPU | floor, ms CPU | floor ÷ route: FastAPI → dispatcher |")
    print("|---|---:|---:|---:|---:|")
    floor = rows[0][1]
    for route, slow, fast in rows[1:]:
        print(f"| {route} | {slow:.3f} | {fast:.3f} | {floor:.3f} | {floor / slow:.2f}× → {floor / fast:.2f}× |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

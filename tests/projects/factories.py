"""Builders for project tests: households straight through the ORM, projects through the API."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fupin.households.models import Household

_numbers = itertools.count(1)


async def make_household(sm: async_sessionmaker[AsyncSession], *, village: str) -> uuid.UUID:
    hid = uuid.uuid4()
    async with sm() as session, session.begin():
        session.add(
            Household(
                id=hid, area_code=village, household_no=f"P{next(_numbers):06d}", head_name="张三", category="general",
                main_cause="因病", secondary_causes=[], status="registered",
            )
        )
    return hid


def project_body(area_code: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "50亩优质葛根种植技术示范",
        "kind": "科技示范",
        "year": 2026,
        "department": "县科技局",
        "implementing_unit": "宝山村村委会",
        "area_code": area_code,
        "quantities": [{"item": "葛根种植", "unit": "亩", "planned": "50", "done": "0"}],
        "budget": {"central": "100000.00"},
    }
    body.update(overrides)
    return body


async def create_project(client: httpx.AsyncClient, headers: dict[str, str], area_code: str, **overrides: Any) -> dict[str, Any]:
    r = await client.post("/projects", headers=headers, json=project_body(area_code, **overrides))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def move(
    client: httpx.AsyncClient, headers: dict[str, str], pid: str, to: str, **extra: Any
) -> httpx.Response:
    return await client.post(f"/projects/{pid}/transitions", headers=headers, json={"to": to, **extra})


async def notice(client: httpx.AsyncClient, headers: dict[str, str], pid: str, stage: str) -> None:
    r = await client.post(
        f"/projects/{pid}/notices", headers=headers,
        json={"stage": stage, "starts_on": "2026-03-01", "ends_on": "2026-03-07", "content": "公示"},
    )
    assert r.status_code == 201, r.text


async def advance_to(client: httpx.AsyncClient, headers: dict[str, str], pid: str, target: str) -> None:
    """Walk the main line to `target`, adding the notice and winning bid each step needs."""
    steps = ["in_library", "approved", "tendering", "in_progress", "completed", "accepted", "closed"]
    for step in steps:
        if step == "approved":
            await notice(client, headers, pid, "pre_approval")
        if step == "in_progress":
            r = await client.post(
                f"/projects/{pid}/bids", headers=headers, json={"bidder": "某建设公司", "amount": "95000.00", "winner": True}
            )
            assert r.status_code == 201, r.text
        if step == "closed":
            await notice(client, headers, pid, "post_acceptance")
        extra = {"on": "2026-03-10"}
        if step == "accepted":
            extra |= {"acceptance_team": "县扶贫办验收组", "acceptance_result": "合格"}
        r = await move(client, headers, pid, step, **extra)
        assert r.status_code == 201, r.text
        if step == target:
            return

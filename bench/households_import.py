"""Benchmark (not a test): import a 10,000-household roster (≈30,000 member rows) and time it.

    python -m bench.households_import
Creates and drops its own scratch database (bench.run.scratch_database), like every benchmark here.
"""

from __future__ import annotations

import asyncio
import io
import time

from openpyxl import Workbook

from bench.run import scratch_database
from fupin.areas import service as area_service
from fupin.auth.principal import SYSTEM
from fupin.db import make_engine, make_sessionmaker
from fupin.households.importer import HEADERS, import_roster
from tests.households.factories import id_number


def roster(villages: list[str], households: int) -> bytes:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet()
    ws.append(HEADERS)
    for i in range(households):
        v = villages[i % len(villages)]
        for j, rel in enumerate(("户主", "配偶", "子女")):
            ws.append([f"B{i:06d}", v, "一组", "一般贫困户", "因病", "缺资金", "2800.00", "否", "否", 2016,
                       f"人{i}-{j}", id_number(), rel, "普通劳动力", "是", "否", "健康", ""])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


async def timed_import(owner: str) -> None:
    engine = make_engine(owner, name="bench")
    sm = make_sessionmaker(engine)
    villages = [f"520201{100 + t:03d}{200 + v:03d}" for t in range(5) for v in range(10)]
    async with sm() as s, s.begin():
        await area_service.create_area(s, principal=SYSTEM, code="520201000000", name="县", population=0)
        for t in range(5):
            await area_service.create_area(s, principal=SYSTEM, code=f"520201{100 + t:03d}000", name="乡", population=0)
        for v in villages:
            await area_service.create_area(s, principal=SYSTEM, code=v, name="村", population=1000)
    content = roster(villages, 10_000)
    t0 = time.perf_counter()
    async with sm() as s, s.begin():
        result = await import_roster(s, principal=SYSTEM, content=content)
    print(f"imported {result.households} households / {result.members} members "
          f"({len(content) // 1024} KiB) in {time.perf_counter() - t0:.1f} s")
    await engine.dispose()


def main() -> None:
    with scratch_database("fupin_bench_import") as owner:
        asyncio.run(timed_import(owner))


if __name__ == "__main__":
    main()

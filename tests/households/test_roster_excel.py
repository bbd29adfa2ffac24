"""The Excel roster: import (all or nothing, every bad row named), its shape checks, and the export."""

from __future__ import annotations

import io

from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from fupin.auth.roles import Role
from fupin.households.importer import HEADERS
from fupin.households.models import Household
from tests.factories import new_county, token_for
from tests.households.factories import XLSX, id_number, post_import, row


class TestImport:
    async def test_good_roster_imports_as_registered(self, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker, townships=1, villages=2)
        v0, v1 = county.villages[county.townships[0]]
        office = await token_for(owner_sessionmaker, test_settings, role=Role.poverty_office, area_code=county.code)
        rows = [
            row("001", v0, "王一", id_number()), row("001", v0, "王二", id_number(sex="F"), "配偶"),
            row("002", v0, "赵一", id_number(), 主要致贫原因="缺劳力", 劳动能力="无劳动力"),
            row("001", v1, "钱一", id_number(), 贫困户属性="特困供养贫困户"),
        ]
        r = await post_import(client, office, rows)
        assert r.status_code == 201, r.text
        assert r.json() == {"households": 3, "members": 4}
        items = (await client.get("/households", headers=office, params={"area": v0, "sort": "household_no"})).json()["items"]
        assert [(h["household_no"], h["status"], h["year_identified"]) for h in items] == [
            ("001", "registered", 2016), ("002", "registered", 2016)]
        assert items[0]["secondary_causes"] == ["lack_capital", "lack_skills"]
        assert items[0]["income_per_capita"] == "2800.50"
        hist = (await client.get(f"/households/{items[0]['id']}/history", headers=office)).json()["items"]
        assert [(e["kind"], e["to_status"]) for e in hist] == [("import", "registered")]

    async def test_one_bad_row_imports_nothing_and_names_the_row(self, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker, townships=1, villages=1)
        v0 = county.villages[county.townships[0]][0]
        office = await token_for(owner_sessionmaker, test_settings, role=Role.poverty_office, area_code=county.code)
        good = id_number()
        bad = good[:17] + ("1" if good[17] == "0" else "0")
        rows = [row("001", v0, "王一", id_number()), row("002", v0, "赵一", id_number()),
                row("003", v0, "孙一", bad), row("004", v0, "李一", id_number())]
        r = await post_import(client, office, rows)
        assert r.status_code == 422
        body = r.json()
        assert body["code"] == "household.import_invalid"
        assert body["extra"]["errors"] == [{"row": 4, "column": "身份证号", "code": "member.id_check_digit",
                                            "message": "ID number check digit is wrong"}]
        async with owner_sessionmaker() as s:
            assert await s.scalar(select(func.count()).select_from(Household).where(Household.area_code == v0)) == 0

    async def test_every_bad_row_is_reported(self, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker, townships=1, villages=1)
        other = await new_county(owner_sessionmaker, townships=1, villages=1)
        v0 = county.villages[county.townships[0]][0]
        office = await token_for(owner_sessionmaker, test_settings, role=Role.poverty_office, area_code=county.code)
        dup = id_number()
        rows = [
            row("001", v0, "王一", dup),
            row("001", v0, "王二", dup, "配偶"),  # same ID twice in the file
            row("002", v0, "赵一", "520201800517001"),  # 15 digits
            row("003", other.villages[other.townships[0]][0], "孙一", id_number()),  # not in my area
            row("004", v0, "李一", id_number(), 劳动能力="很强"),
            row("005", v0, "周一", id_number(), "配偶"),  # no head
        ]
        r = await post_import(client, office, rows)
        assert r.status_code == 422
        got = {(e["row"], e["column"], e["code"]) for e in r.json()["extra"]["errors"]}
        assert got == {
            (3, "身份证号", "member.id_duplicate"),
            (4, "身份证号", "member.id_legacy_15"),
            (5, "村代码", "import.unknown_village"),
            (6, "劳动能力", "import.unknown_labour"),
            (7, "与户主关系", "household.head_count"),
        }

    async def test_id_already_registered_elsewhere_is_reported(self, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker, townships=1, villages=1)
        v0 = county.villages[county.townships[0]][0]
        office = await token_for(owner_sessionmaker, test_settings, role=Role.poverty_office, area_code=county.code)
        number = id_number()
        assert (await post_import(client, office, [row("001", v0, "王一", number)])).status_code == 201
        r = await post_import(client, office, [row("009", v0, "王一", number)])
        assert r.status_code == 422
        assert [(e["row"], e["code"]) for e in r.json()["extra"]["errors"]] == [(2, "member.id_duplicate")]

    async def test_only_the_poverty_office_imports(self, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker, townships=1, villages=1)
        st = await token_for(owner_sessionmaker, test_settings, role=Role.township_station, area_code=county.townships[0])
        r = await post_import(client, st, [row("001", county.villages[county.townships[0]][0], "王一", id_number())])
        assert r.status_code == 403

    async def test_export_xlsx_round_trips_masked(self, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker, townships=1, villages=1)
        v0 = county.villages[county.townships[0]][0]
        office = await token_for(owner_sessionmaker, test_settings, role=Role.poverty_office, area_code=county.code)
        number = id_number()
        await post_import(client, office, [row("001", v0, "王一", number)])
        full = await client.get("/households/export", headers=office, params={"area": v0})
        assert full.headers["content-type"] == XLSX
        ws = load_workbook(io.BytesIO(full.content)).active
        values = list(ws.iter_rows(values_only=True))
        assert values[1][HEADERS.index("身份证号")] == number
        assert values[1][HEADERS.index("主要致贫原因")] == "因病"
        vc = await token_for(owner_sessionmaker, test_settings, role=Role.village_committee, area_code=v0)
        masked = load_workbook(io.BytesIO((await client.get("/households/export", headers=vc)).content)).active
        assert list(masked.iter_rows(values_only=True))[1][HEADERS.index("身份证号")] == number[:4] + "*" * 10 + number[-4:]


class TestImportShape:
    async def test_not_a_workbook_and_missing_column(self, client, owner_sessionmaker, test_settings):
        county = await new_county(owner_sessionmaker, townships=1, villages=1)
        office = await token_for(owner_sessionmaker, test_settings, role=Role.poverty_office, area_code=county.code)
        r = await client.post("/households/import", headers={**office, "content-type": XLSX}, content=b"not a zip")
        assert r.status_code == 422
        assert r.json()["code"] == "import.not_xlsx"
        wb = Workbook()
        wb.active.append([h for h in HEADERS if h != "身份证号"])
        out = io.BytesIO()
        wb.save(out)
        r = await client.post("/households/import", headers={**office, "content-type": XLSX}, content=out.getvalue())
        assert r.status_code == 422
        assert r.json()["extra"]["errors"][0]["code"] == "import.column_missing"
        assert r.json()["extra"]["errors"][0]["column"] == "身份证号"


async def test_an_xlsx_export_past_a_sheet_is_refused_and_csv_streams_every_row(client, owner_sessionmaker,
                                                                              test_settings, monkeypatch):
    from fupin.auth.roles import Role
    from fupin.households import queries
    from fupin_api.routes import households as routes
    from tests.factories import new_county, token_for
    from tests.households.factories import household_body

    county = await new_county(owner_sessionmaker, townships=1, villages=1)
    village = county.villages[county.townships[0]][0]
    writer = await token_for(owner_sessionmaker, test_settings, role=Role.village_committee, area_code=village)
    for _ in range(3):
        assert (await client.post("/households", headers=writer, json=household_body(village))).status_code == 201
    hdr = await token_for(owner_sessionmaker, test_settings, role=Role.poverty_office, area_code=county.code)
    params = {"area": village}
    whole = await client.get("/households/export", headers=hdr, params={**params, "format": "csv"})
    assert whole.status_code == 200
    lines = whole.content.decode("utf-8-sig").splitlines()
    members = len(lines) - 1
    assert members >= 3
    # read two rows per fetch: the same file, streamed in several chunks
    monkeypatch.setattr(queries, "EXPORT_BATCH", 2)
    chunks = []
    async with client.stream("GET", "/households/export", headers=hdr, params={**params, "format": "csv"}) as r:
        assert r.status_code == 200
        chunks = [c async for c in r.aiter_raw()]
    assert b"".join(chunks).decode("utf-8-sig").splitlines() == lines
    # an .xlsx sheet has a ceiling: past it the export is refused, never cut short; CSV has none
    monkeypatch.setattr(routes, "XLSX_ROW_LIMIT", members - 1)
    r = await client.get("/households/export", headers=hdr, params=params)
    assert r.status_code == 413
    assert r.json()["code"] == "export.too_large"
    assert r.json()["extra"]["limit"] == members - 1
    csv_again = await client.get("/households/export", headers=hdr, params={**params, "format": "csv"})
    assert csv_again.content.decode("utf-8-sig").splitlines() == lines
    monkeypatch.setattr(routes, "XLSX_ROW_LIMIT", members)
    full = await client.get("/households/export", headers=hdr, params=params)
    assert full.status_code == 200
    assert len(list(load_workbook(io.BytesIO(full.content)).active.iter_rows())) == members + 1
    # outside the caller's area: 404 before anything is streamed
    other = await new_county(owner_sessionmaker, townships=1, villages=1)
    r = await client.get("/households/export", headers=hdr, params={"area": other.code, "format": "csv"})
    assert r.status_code == 404

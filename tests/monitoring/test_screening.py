"""Departmental screening files: matched by ID number, the expense rule per household at its exact
boundary, unknown ID numbers reported row by row, bad files refused whole, warnings routed to the right
cadre, and the set-based SQL deciding exactly as the pure rule does."""

from __future__ import annotations

import io
import uuid
from decimal import Decimal

import openpyxl
from sqlalchemy import func, select

from fupin.monitoring import rules
from fupin.monitoring.models import MonitoredHousehold, MonitoringWarning, Screening, ScreeningRow
from tests.monitoring.factories import (
    R,
    cadre_with_user,
    exited_household,
    pair_before_exit,
    person_id,
    post,
    step,
    verification,
    warning_body,
)

HEADER = "身份证号,姓名,金额,日期\n"


def csv_file(rows: list[tuple[str, str, str, str]], header: str = HEADER) -> bytes:
    return (header + "".join(",".join(r) + "\n" for r in rows)).encode()


async def upload(client, world, content: bytes, source: str = "medical", status: int = 201, **params) -> dict:
    r = await client.post("/monitoring/screenings", headers=world.h[R.poverty_office], content=content,
                          params={"area_code": world.county.code, "source": source, "received_on": "2026-09-24",
                                  "filename": "医保202609.csv", **params})
    assert r.status_code == status, r.text
    return r.json()


async def result_rows(client, world, screening_id: str, headers=None) -> list[dict]:
    r = await client.get(f"/monitoring/screenings/{screening_id}/rows", headers=headers or world.h[R.poverty_office],
                         params={"limit": 500})
    assert r.status_code == 200, r.text
    return r.json()["items"]


class TestMedicalFile:
    async def test_matches_by_id_number_and_weighs_each_households_costs_against_half_its_income(
            self, client, world):
        cadre_id, cadre = await cadre_with_user(client, world)
        above, above_people = await exited_household(world.sm, world.village, income="6000.00")
        await pair_before_exit(world.sm, client, world, cadre_id, above)
        _, at_half = await exited_household(world.sm, world.other_village, income="6000.00")
        _, poor = await exited_household(world.sm, world.village, status="registered")
        open_case, open_people = await exited_household(world.sm, world.village)
        opened = await post(client, "/monitoring/warnings", world.h[R.village_committee], warning_body(open_case))
        stranger = person_id(world.county.code)
        content = csv_file([
            (above_people[1][1], "成员1", "9000.01", "2026-09-10"),  # 3 × 6000 × 50% = 9000.00: above by a fen
            (at_half[0][1], "成员0", "4500.00", "2026-09-11"),  # two members' bills add up to exactly half
            (at_half[2][1], "成员2", "4500.00", "2026-09-12"),
            (stranger, "路人", "50000.00", "2026-09-12"),
            (poor[0][1].lower() if poor[0][1].endswith("X") else poor[0][1], "成员0", "80000.00", "2026-09-13"),
            (open_people[0][1], "成员0", "100.00", "2026-09-14"),  # joins the open case whatever the amount
        ])
        s = await upload(client, world, content)
        assert (s["rows"], s["matched"], s["warnings"], s["below_threshold"], s["in_registry"], s["attached"],
                s["unmatched"]) == (6, 5, 1, 3, 1, 0, 1)
        rows = await result_rows(client, world, s["id"])
        assert [r["outcome"] for r in rows] == ["warning", "below_threshold", "below_threshold", "unmatched",
                                                "in_registry", "below_threshold"]
        assert rows[3]["name"] is None
        assert rows[3]["id_masked"] == stranger[:4] + "**********" + stranger[-4:]
        warning_id = rows[0]["warning_id"]
        # The open case still counts as below the threshold with ¥100: only a risk joins a case.
        assert rows[5]["monitored_household_id"] == opened["monitored_household_id"]
        mine = (await client.get("/monitoring/warnings", headers=cadre)).json()["items"]
        assert [(w["id"], w["source"], w["screening_id"], w["amount"], w["cause"]) for w in mine] == [
            (warning_id, "screening", s["id"], "9000.01", "illness")]
        mh = (await client.get(f"/monitored-households/{rows[0]['monitored_household_id']}", headers=cadre)).json()
        # received 2026-09-24: the same 15-working-day deadline as any warning
        assert (mh["status"], mh["kind"], mh["decision_due_on"], mh["household_id"]) == (
            "warned", "unstable_exited", "2026-10-22", str(above))
        again = await upload(client, world, content, status=409)
        assert (again["code"], again["extra"]["screening_id"]) == ("screening.duplicate_file", s["id"])

    async def test_a_risk_joins_an_open_case_and_reopens_a_closed_one(self, client, world):
        open_case, open_people = await exited_household(world.sm, world.village)
        opened = await post(client, "/monitoring/warnings", world.h[R.village_committee], warning_body(open_case))
        closed, closed_people = await exited_household(world.sm, world.village, income="7000.00")
        w = await post(client, "/monitoring/warnings", world.h[R.village_committee], warning_body(closed))
        mh_id = w["monitored_household_id"]
        await step(client, world, mh_id, "verify", "2026-09-24", verification=verification("7000.00"))
        await step(client, world, mh_id, "village_review", "2026-09-24")
        await step(client, world, mh_id, "township_check", "2026-09-24")
        await step(client, world, mh_id, "decide_dismiss", "2026-09-24", opinion="无风险")
        s = await upload(client, world, csv_file([(open_people[0][1], "甲", "20000.00", "2026-09-01"),
                                                  (closed_people[0][1], "乙", "20000.00", "2026-09-01")]))
        assert (s["attached"], s["warnings"]) == (1, 1)
        rows = await result_rows(client, world, s["id"])
        assert [(r["outcome"], r["monitored_household_id"]) for r in rows] == [
            ("attached", opened["monitored_household_id"]), ("warning", mh_id)]
        mh = (await client.get(f"/monitored-households/{mh_id}", headers=world.h[R.poverty_office])).json()
        assert (mh["status"], mh["cycle"], mh["closed_on"], mh["decided_on"]) == ("warned", 2, None, None)
        history = (await client.get(f"/monitored-households/{mh_id}/steps", headers=world.h[R.poverty_office])).json()["items"]
        assert [(h["cycle"], h["step"], h["from_status"]) for h in history][-1] == (2, "open", "dismissed")

    async def test_households_outside_the_registry_are_matched_too(self, client, world):
        number = person_id(world.village)
        body = {"area_code": world.village, "kind": "marginal", "income_per_capita": "4000.00", "cause": "illness",
                "reported_on": "2026-09-01", "persons": [{"name": "王某", "id_number": number, "relation": "户主"}]}
        mh = await post(client, "/monitored-households", world.h[R.village_committee], body)
        s = await upload(client, world, csv_file([(number, "王某", "2000.01", "2026-09-02")]))
        rows = await result_rows(client, world, s["id"])
        assert [(r["outcome"], r["monitored_household_id"], r["household_id"]) for r in rows] == [
            ("attached", mh["id"], None)]


class TestRefusals:
    async def test_bad_rows_each_get_an_error_and_nothing_is_applied(self, client, world):
        _, people = await exited_household(world.sm, world.village)
        good = people[0][1]
        bad_check = good[:17] + ("0" if good[17] != "0" else "1")
        content = csv_file([
            (good, "甲", "100.00", "2026-09-01"),
            (bad_check, "乙", "100.00", "2026-09-01"),
            (good, "甲", "100.00", "2026-09-02"),  # duplicate
            ("110105491231002", "丙", "100.00", "2026-09-01"),  # 15-digit legacy
            (person_id(world.village), "", "100.00", "2026-09-01"),
            (person_id(world.village), "丁", "1e3", "2026-09-01"),
            (person_id(world.village), "戊", "", "2026-09-01"),
            (person_id(world.village), "己", "100.00", "2026-02-30"),
            (person_id(world.village), "庚", "100.00", "2099-01-01"),
        ])
        r = await upload(client, world, content, status=422)
        assert (r["code"], r["extra"]["error_count"]) == ("screening.file_invalid", 8)
        assert [(e["row"], e["column"], e["code"]) for e in r["extra"]["errors"]] == [
            (3, "身份证号", "member.id_check_digit"),
            (4, "身份证号", "screening.duplicate"),
            (5, "身份证号", "member.id_legacy_15"),
            (6, "姓名", "screening.bad_name"),
            (7, "金额", "screening.bad_amount"),
            (8, "金额", "screening.required"),
            (9, "日期", "screening.bad_date"),
            (10, "日期", "screening.bad_date"),
        ]
        async with world.sm() as session:
            assert await session.scalar(select(func.count()).select_from(Screening).where(
                Screening.area_code == world.county.code)) == 0
            assert await session.scalar(select(func.count()).select_from(MonitoredHousehold).where(
                MonitoredHousehold.area_code == world.village)) == 0

    async def test_a_missing_column_an_unreadable_or_empty_file(self, client, world):
        r = await upload(client, world, csv_file([], header="身份证号,姓名,日期\n"), status=422)
        assert [(e["column"], e["code"]) for e in r["extra"]["errors"]] == [("金额", "screening.column_missing")]
        # sources without amounts need no amount column
        r = await upload(client, world, csv_file([], header="身份证号,姓名,日期\n"), source="housing", status=422)
        assert r["code"] == "screening.empty"
        assert (await upload(client, world, b"PK\x03\x04garbage", status=422))["code"] == "screening.unreadable"
        assert (await upload(client, world, "身份证号".encode("gbk"), status=422))["code"] == "screening.not_utf8"
        r = await client.post("/monitoring/screenings", headers=world.h[R.poverty_office], content=b"",
                              params={"area_code": world.county.code, "source": "medical"})
        assert r.status_code == 422

    async def test_only_the_poverty_office_uploads_for_its_own_county(self, client, world):
        content = csv_file([(person_id(world.village), "甲", "1.00", "2026-09-01")])
        r = await client.post("/monitoring/screenings", headers=world.h[R.township_station], content=content,
                              params={"area_code": world.county.code, "source": "medical"})
        assert r.status_code == 403
        other = await world.header(R.poverty_office, "990199000000")
        r = await client.post("/monitoring/screenings", headers=other, content=content,
                              params={"area_code": world.county.code, "source": "medical"})
        assert r.status_code == 404
        s = await upload(client, world, content)
        assert (await client.get(f"/monitoring/screenings/{s['id']}", headers=other)).status_code == 404
        assert (await client.get(f"/monitoring/screenings/{s['id']}/rows", headers=other)).status_code == 404


class TestOtherSources:
    async def test_an_xlsx_from_civil_affairs_warns_on_every_match(self, client, world):
        _, people = await exited_household(world.sm, world.village)
        wb = openpyxl.Workbook()
        ws = wb.active
        ws.append(["身份证号", "姓名", "日期", "说明"])
        ws.append([people[2][1], "成员2", "2026-09-15", "纳入低保"])
        buf = io.BytesIO()
        wb.save(buf)
        s = await upload(client, world, buf.getvalue(), source="civil_affairs")
        assert (s["warnings"], s["source"]) == (1, "civil_affairs")
        rows = await result_rows(client, world, s["id"])
        w = (await client.get("/monitoring/warnings", headers=world.h[R.poverty_office],
                              params={"monitored_household_id": rows[0]["monitored_household_id"]})).json()["items"]
        assert [(x["cause"], x["screening_source"], x["amount"]) for x in w] == [("income_drop", "civil_affairs", None)]

    async def test_a_village_sees_its_own_rows_only(self, client, world):
        _, mine = await exited_household(world.sm, world.village)
        _, theirs = await exited_household(world.sm, world.other_village)
        s = await upload(client, world, csv_file([(mine[0][1], "甲", "90000.00", "2026-09-01"),
                                                  (theirs[0][1], "乙", "90000.00", "2026-09-01")]))
        rows = await result_rows(client, world, s["id"], headers=world.h[R.village_committee])
        assert [r["row_no"] for r in rows] == [2]


class TestSqlTwinOfTheRule:
    async def test_the_set_based_decision_equals_the_pure_rule_case_by_case(self, client, world, owner_sessionmaker):
        """Incomes, sizes and amounts around the boundary, including a threshold with a half fen."""
        cases = [("6000.00", 3, "9000.00"), ("6000.00", 3, "9000.01"), ("3333.33", 1, "1666.66"),
                 ("3333.33", 1, "1666.67"), ("0.00", 2, "0.01"), ("12345.67", 5, "30864.17"),
                 ("12345.67", 5, "30864.18"), ("5999.99", 4, "11999.98"), ("5999.99", 4, "11999.99")]
        expected, rows = [], []
        for income, persons, amount in cases:
            _, people = await exited_household(world.sm, world.village, members=persons, income=income)
            rows.append((people[0][1], "某", amount, "2026-09-01"))
            at_risk = rules.expense_at_risk(Decimal(amount), Decimal(income), persons, rules.DEFAULT_RULES)
            expected.append("warning" if at_risk else "below_threshold")
        s = await upload(client, world, csv_file(rows))
        assert [r["outcome"] for r in await result_rows(client, world, s["id"])] == expected
        assert expected.count("warning") == 5
        async with owner_sessionmaker() as session:
            stored = (await session.scalars(select(ScreeningRow.outcome).where(
                ScreeningRow.screening_id == uuid.UUID(s["id"])).order_by(ScreeningRow.row_no))).all()
            warnings = await session.scalar(select(func.count()).select_from(MonitoringWarning).where(
                MonitoringWarning.screening_id == uuid.UUID(s["id"])))
        assert list(stored) == expected
        assert warnings == 5

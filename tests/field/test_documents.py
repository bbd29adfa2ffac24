"""Documents and photos: checked uploads that keep nothing when refused, content-addressed storage, scoped
and audited downloads, ID-bearing papers, EXIF location stripped, thumbnails, visit photo flags at their
boundaries, and photos linked by the offline sync."""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from PIL import Image
from sqlalchemy import func, select

from fupin.audit.models import AuditEvent
from fupin.auth.roles import Role
from fupin.documents.models import Document
from tests.factories import new_county, token_for
from tests.field.photos import KM_PER_DEGREE, VILLAGE_LAT, VILLAGE_LON, exif_of, jpeg
from tests.pairing.factories import admin, cadre_user, make_household, pair, post, unit_and_cadres


async def upload(client, headers, data: bytes, *, kind="产业照片", target_type="household", target_id=None,
                 filename="photo.jpg", content_type="image/jpeg", extra_headers=None):
    form = {"kind": kind, "target_type": target_type}
    if target_id is not None:
        form["target_id"] = str(target_id)
    return await client.post("/documents", headers={**headers, **(extra_headers or {})}, data=form,
                             files={"file": (filename, data, content_type)})


def _storage_files(app) -> set[Path]:
    root: Path = app.state.storage.root
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


async def _rows(sm, **where) -> int:
    async with sm() as session:
        stmt = select(func.count()).select_from(Document)
        for k, v in where.items():
            stmt = stmt.where(getattr(Document, k) == v)
        return int(await session.scalar(stmt) or 0)


async def _world(owner_sessionmaker, test_settings):
    county = await new_county(owner_sessionmaker)
    tw_a, tw_b = county.townships
    village = county.villages[tw_a][0]
    h = {
        "village": await token_for(owner_sessionmaker, test_settings, role=Role.village_committee, area_code=village),
        "station": await token_for(owner_sessionmaker, test_settings, role=Role.township_station, area_code=tw_a),
        "station_b": await token_for(owner_sessionmaker, test_settings, role=Role.township_station, area_code=tw_b),
        "office": await admin(owner_sessionmaker, test_settings, county.code),
        "auditor": await token_for(owner_sessionmaker, test_settings, role=Role.auditor, area_code=county.code),
    }
    household = await make_household(owner_sessionmaker, village)
    return county, village, household, h


class TestUpload:
    async def test_a_photo_is_stored_once_and_described(self, app, client, owner_sessionmaker, test_settings):
        _, village, household, h = await _world(owner_sessionmaker, test_settings)
        other = await make_household(owner_sessionmaker, village)
        data = jpeg(seed=1, lat=VILLAGE_LAT, lon=VILLAGE_LON)
        sha = hashlib.sha256(data).hexdigest()
        r = await upload(client, h["village"], data, target_id=household)
        assert r.status_code == 201, r.text
        doc = r.json()
        assert r.headers["location"] == f"/documents/{doc['id']}"
        assert (doc["sha256"], doc["size"], doc["media_type"]) == (sha, len(data), "image/jpeg")
        assert (doc["width"], doc["height"], doc["has_thumbnail"]) == (640, 480, True)
        assert datetime.fromisoformat(doc["taken_at"]) == datetime(2026, 8, 12, 1, 30, tzinfo=UTC)
        assert (doc["area_code"], doc["household_id"], doc["has_location"]) == (village, household, True)
        assert doc["latitude"] is None  # only auditors see where it was taken

        files_before = _storage_files(app)
        again = await upload(client, h["village"], data, target_id=household)
        assert (again.status_code, again.json()["id"]) == (200, doc["id"])
        elsewhere = await upload(client, h["village"], data, target_id=other)
        assert elsewhere.status_code == 201
        assert elsewhere.json()["id"] != doc["id"]
        assert _storage_files(app) == files_before  # the bytes were not stored a second time
        assert [p for p in files_before if p.name == sha] != []
        assert await _rows(owner_sessionmaker, sha256=sha) == 2

    async def test_refused_uploads_keep_nothing(self, app, client, owner_sessionmaker, test_settings):
        _, _, household, h = await _world(owner_sessionmaker, test_settings)
        files_before = _storage_files(app)
        cases = [
            (b"this is not a photo, whatever its name says", "image/jpeg", 415, "document.unsupported_type"),
            (b"%PDF-1.7\n%fake but typed as a photo\n", "image/jpeg", 415, "document.type_mismatch"),
            (b"\xff\xd8\xff\xe0" + b"\x00" * 200, "image/jpeg", 422, "document.corrupt_image"),
            (b"", "image/jpeg", 422, "document.empty"),
        ]
        for data, ctype, status, code in cases:
            r = await upload(client, h["village"], data, target_id=household, content_type=ctype)
            assert (r.status_code, r.json()["code"]) == (status, code), r.text
            assert r.headers["content-type"] == "application/problem+json"
        settings = app.state.settings
        app.state.settings = settings.model_copy(update={"document_max_bytes": 4096})
        try:
            big = jpeg(seed=2, noise=1)
            assert len(big) > 4096
            r = await upload(client, h["village"], big, target_id=household)
            assert (r.status_code, r.json()["code"]) == (413, "document.too_large")
            assert r.json()["extra"]["max_bytes"] == 4096
        finally:
            app.state.settings = settings
        assert await _rows(owner_sessionmaker, household_id=uuid.UUID(household)) == 0
        assert _storage_files(app) == files_before

    async def test_a_pdf_is_accepted_without_a_thumbnail(self, client, owner_sessionmaker, test_settings):
        _, _, household, h = await _world(owner_sessionmaker, test_settings)
        pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n" + uuid.uuid4().bytes
        r = await upload(client, h["village"], pdf, kind="其他", filename="scan.bin", content_type="application/pdf")
        assert r.status_code == 422  # a household target needs its id
        assert r.json()["code"] == "document.target_required"
        r = await upload(client, h["village"], pdf, kind="其他", target_id=household, filename="scan.bin",
                         content_type="application/octet-stream")
        assert (r.status_code, r.json()["media_type"], r.json()["has_thumbnail"]) == (201, "application/pdf", False)

    async def test_a_retried_upload_with_an_idempotency_key(self, client, owner_sessionmaker, test_settings):
        _, _, household, h = await _world(owner_sessionmaker, test_settings)
        key = {"Idempotency-Key": str(uuid.uuid4())}
        data = jpeg(seed=3)
        first = await upload(client, h["village"], data, target_id=household, extra_headers=key)
        retry = await upload(client, h["village"], data, target_id=household, extra_headers=key)
        assert (retry.status_code, retry.content, retry.headers["idempotent-replayed"]) == (201, first.content, "true")
        assert retry.headers["location"] == first.headers["location"]
        other = await upload(client, h["village"], jpeg(seed=4), target_id=household, extra_headers=key)
        assert other.json()["code"] == "idempotency.key_reused"


class TestDownload:
    async def test_downloads_are_scoped_audited_and_lose_their_location(
        self, client, owner_sessionmaker, test_settings
    ):
        _, _, household, h = await _world(owner_sessionmaker, test_settings)
        data = jpeg(seed=5, lat=VILLAGE_LAT, lon=VILLAGE_LON)
        doc = (await upload(client, h["village"], data, target_id=household)).json()

        for path in (f"/documents/{doc['id']}", f"/documents/{doc['id']}/content", f"/documents/{doc['id']}/thumbnail"):
            r = await client.get(path, headers=h["station_b"])  # the next township
            assert (r.status_code, r.json()["code"]) == (404, "document.not_found"), path
        assert (await client.get("/documents", headers=h["station_b"],
                                 params={"household_id": household})).json()["items"] == []

        r = await client.get(f"/documents/{doc['id']}/content", headers=h["station"])
        assert r.status_code == 200
        assert r.headers["x-location-removed"] == "true"
        assert r.content != data
        sub, gps = exif_of(r.content)
        assert gps == {}
        assert sub[36867] == "2026:08:12 09:30:00"  # the time stays: it is the evidence of the visit day
        Image.open(io.BytesIO(r.content)).load()  # still a whole photo

        r = await client.get(f"/documents/{doc['id']}/content", headers=h["auditor"])
        assert (r.content, r.headers["x-location-removed"]) == (data, "false")
        seen = (await client.get(f"/documents/{doc['id']}", headers=h["auditor"])).json()
        assert (seen["latitude"], seen["longitude"]) == (str(VILLAGE_LAT), str(VILLAGE_LON))

        thumb = await client.get(f"/documents/{doc['id']}/thumbnail", headers=h["station"])
        assert thumb.headers["content-type"] == "image/jpeg"
        with Image.open(io.BytesIO(thumb.content)) as img:
            assert max(img.size) == 320
            assert img.getexif().get_ifd(0x8825) == {}

        async with owner_sessionmaker() as session:
            audited = await session.scalar(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.action == "document.download", AuditEvent.entity_id == doc["id"]))
        assert audited == 3

    async def test_id_bearing_papers_only_for_roles_that_see_id_numbers(
        self, client, owner_sessionmaker, test_settings
    ):
        _, _, household, h = await _world(owner_sessionmaker, test_settings)
        data = jpeg(seed=6, taken=None)
        doc = (await upload(client, h["village"], data, kind="户口本", target_id=household)).json()
        for who in ("village", "station", "auditor"):
            r = await client.get(f"/documents/{doc['id']}/content", headers=h[who])
            assert (r.status_code, r.json()["code"]) == (403, "document.id_restricted"), who
        assert (await client.get(f"/documents/{doc['id']}", headers=h["station"])).status_code == 200
        r = await client.get(f"/documents/{doc['id']}/content", headers=h["office"])  # 县扶贫办 sees ID numbers
        assert (r.status_code, r.content) == (200, data)


async def _visit_world(client, owner_sessionmaker, test_settings):
    county = await new_county(owner_sessionmaker)
    office = await admin(owner_sessionmaker, test_settings, county.code)
    user_id, cadre_tok = await cadre_user(owner_sessionmaker, test_settings, county.code)
    _, (cadre,) = await unit_and_cadres(client, office, county.code, 1, user_ids=[user_id])
    township = county.townships[0]
    village = county.villages[township][0]
    household = await make_household(owner_sessionmaker, village)
    await pair(client, office, cadre, household)
    r = await client.put(f"/archive/village-locations/{village}", headers=office,
                         json={"latitude": str(VILLAGE_LAT), "longitude": str(VILLAGE_LON)})
    assert r.status_code == 204, r.text
    station = await token_for(owner_sessionmaker, test_settings, role=Role.township_station, area_code=township)
    return county, village, household, cadre_tok, station


def _north(km: str) -> Decimal:
    return (VILLAGE_LAT + Decimal(km) / KM_PER_DEGREE).quantize(Decimal("0.000001"))


class TestVisitEvidence:
    async def test_photo_day_and_distance_are_flagged_at_their_boundaries(
        self, client, owner_sessionmaker, test_settings
    ):
        _, village, household, cadre, station = await _visit_world(client, owner_sessionmaker, test_settings)
        visit = await post(client, "/visits", cadre, {"household_id": household, "visit_date": "2026-08-12",
                                                      "kind": "routine"})
        cases = [  # (EXIF local time, its offset, km north of the village, expected flags)
            ("2026:08:12 00:00:00", None, "0", []),
            ("2026:08:12 23:59:59", None, "2.99", []),
            ("2026:08:11 23:59:59", None, "0", ["photo_other_day"]),
            ("2026:08:13 00:00:00", None, "0", ["photo_other_day"]),
            ("2026:08:12 18:30:00", "+00:00", "0", ["photo_other_day"]),  # 02:30 on the 13th in Guizhou
            ("2026:08:12 12:00:00", None, "3.01", ["photo_far_from_village"]),
            ("2026:08:10 12:00:00", None, "25", ["photo_other_day", "photo_far_from_village"]),
            (None, None, None, []),  # nothing to check: not flagged, not refused
        ]
        flagged = []
        for n, (taken, offset, km, expected) in enumerate(cases):
            lat = _north(km) if km is not None else None
            data = jpeg(seed=100 + n, taken=taken, offset=offset, lat=lat, lon=VILLAGE_LON if lat else None)
            r = await upload(client, cadre, data, kind="走访照片", target_type="visit", target_id=visit["id"])
            assert r.status_code == 201, r.text
            assert r.json()["flags"] == expected, (taken, offset, km)
            if expected:
                flagged.append(r.json()["id"])
        seen: list[dict] = []
        cursor = None
        while True:  # one flag a page, so the cursor is followed to the end
            params = {"area": village, "limit": 1} | ({"cursor": cursor} if cursor else {})
            report = await client.get("/reports/visit-evidence-flags", headers=station, params=params)
            assert report.status_code == 200, report.text
            seen += report.json()["items"]
            if (cursor := report.json()["next_cursor"]) is None:
                break
        assert sorted(x["document_id"] for x in seen) == sorted(flagged)
        assert len(seen) == len(flagged)
        assert {x["visit_id"] for x in seen} == {visit["id"]}

    async def test_a_photo_taken_offline_is_linked_by_the_sync_once(self, client, owner_sessionmaker, test_settings):
        _, _, household, cadre, _ = await _visit_world(client, owner_sessionmaker, test_settings)
        photo = await upload(client, cadre, jpeg(seed=200, taken="2026:08:11 16:00:00"), kind="走访照片",
                             target_type="unattached")
        assert photo.status_code == 201, photo.text
        assert photo.json()["target_type"] == "unattached"
        visit_id = str(uuid.uuid4())
        items = [
            {"type": "evidence", "client_id": str(uuid.uuid4()), "recorded_at": "2026-08-12T18:00:00+08:00",
             "visit_id": visit_id, "document_id": photo.json()["id"]},
            {"type": "visit", "client_id": visit_id, "recorded_at": "2026-08-12T17:00:00+08:00",
             "household_id": household, "visit_date": "2026-08-12", "kind": "routine"},
        ]
        first = await post(client, "/field/sync", cadre, {"items": items}, 200)
        assert [(r["status"], r["flags"]) for r in first["results"]] == [("created", ["photo_other_day"]),
                                                                          ("created", [])]
        assert first["results"][0]["id"] == photo.json()["id"]
        again = await post(client, "/field/sync", cadre, {"items": items}, 200)
        assert [r["status"] for r in again["results"]] == ["already_synced", "already_synced"]
        assert again["results"][0]["flags"] == ["photo_other_day"]
        linked = (await client.get(f"/documents/{photo.json()['id']}", headers=cadre)).json()
        assert (linked["target_type"], linked["target_id"], linked["household_id"]) == ("visit", visit_id, household)
        # the photo now belongs to that visit: another visit cannot take it
        other = {**items[1], "client_id": str(uuid.uuid4())}
        r = await post(client, "/field/sync", cadre, {"items": [other, {**items[0], "client_id": str(uuid.uuid4()),
                                                                        "visit_id": other["client_id"]}]}, 200)
        assert [(x["status"], x["code"]) for x in r["results"]] == [("created", None),
                                                                     ("refused", "document.already_linked")]


class TestTargets:
    async def test_uploads_go_only_to_targets_in_scope(self, client, owner_sessionmaker, test_settings):
        from datetime import date

        from fupin.households.models import Member

        _, village, household, h = await _world(owner_sessionmaker, test_settings)
        member_id = uuid.uuid4()
        async with owner_sessionmaker() as session, session.begin():
            session.add(Member(id=member_id, household_id=uuid.UUID(household), area_code=village, name="张三",
                               id_number=f"52012319800101{uuid.uuid4().int % 10000:04d}", sex="M",
                               birth_date=date(1980, 1, 1), relation="户主", labour="ordinary"))
        r = await upload(client, h["village"], jpeg(seed=500), kind="医疗服务证", target_type="member",
                         target_id=member_id)
        assert r.status_code == 201, r.text
        assert (r.json()["household_id"], r.json()["area_code"]) == (household, village)
        # the next township's station reaches neither the household nor the member
        for target_type, target_id in (("household", household), ("member", member_id)):
            r = await upload(client, h["station_b"], jpeg(seed=501), target_type=target_type, target_id=target_id)
            assert r.status_code == 404, (target_type, r.text)
        for target_type in ("visit", "project_step", "notice", "monitoring_step"):
            r = await upload(client, h["station"], jpeg(seed=502), target_type=target_type, target_id=uuid.uuid4())
            assert r.status_code == 404, target_type
        # an auditor reads but does not upload
        r = await upload(client, h["auditor"], jpeg(seed=503), target_id=household)
        assert r.status_code == 403
        assert await _rows(owner_sessionmaker, household_id=uuid.UUID(household)) == 1

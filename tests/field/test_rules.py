"""Pure rules of the archive: what the bytes are, the photo checks and who reads what."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from PIL import Image

from fupin.auth.roles import Role
from fupin.documents import images, rules
from tests.field.photos import KM_PER_DEGREE, jpeg


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "PNG")
    return out.getvalue()


def _webp() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "WEBP")
    return out.getvalue()


@pytest.mark.parametrize(("data", "expected"), [
    (jpeg(seed=1), "image/jpeg"), (_png(), "image/png"), (_webp(), "image/webp"), (b"%PDF-1.7\n", "application/pdf"),
    (b"GIF89a", None), (b"<svg xmlns=...>", None), (b"", None), (b"RIFF\x00\x00\x00\x00WAVE", None),
])
def test_the_type_comes_from_the_magic_bytes(data, expected):
    assert images.sniff(data[:64]) == expected


def test_a_degree_of_latitude_and_the_flag_boundary():
    base = Decimal("26.570000")
    assert rules.distance_km(base, Decimal("106.7"), base + 1, Decimal("106.7")) == pytest.approx(111.195, abs=0.001)
    for km, flagged in (("2.999", False), ("3.001", True)):
        lat = (base + Decimal(km) / KM_PER_DEGREE).quantize(Decimal("0.000001"))
        flags = rules.visit_photo_flags(visit_date=date(2026, 8, 12), taken_at=None, latitude=lat,
                                        longitude=Decimal("106.7"), village=(base, Decimal("106.7")),
                                        max_km=Decimal("3"), tz="Asia/Shanghai")
        assert flags == (["photo_far_from_village"] if flagged else []), km


def test_the_visit_day_is_the_local_day():
    def flags(at: datetime) -> list[str]:
        return rules.visit_photo_flags(visit_date=date(2026, 8, 12), taken_at=at, latitude=None, longitude=None,
                                       village=None, max_km=Decimal("3"), tz="Asia/Shanghai")

    assert flags(datetime(2026, 8, 11, 16, 0, tzinfo=UTC)) == []  # 00:00 on the 12th in Beijing time
    assert flags(datetime(2026, 8, 11, 15, 59, 59, tzinfo=UTC)) == ["photo_other_day"]
    assert flags(datetime(2026, 8, 12, 15, 59, 59, tzinfo=UTC)) == []
    assert flags(datetime(2026, 8, 12, 16, 0, tzinfo=UTC)) == ["photo_other_day"]


def test_who_reads_id_papers_and_locations():
    assert rules.may_read_kind(Role.poverty_office, "户口本")
    assert rules.may_read_kind(Role.credit_coop, "医疗服务证")
    assert not rules.may_read_kind(Role.township_station, "粮补卡")
    assert not rules.may_read_kind(Role.auditor, "户口本")
    assert rules.may_read_kind(Role.cadre, "产业照片")
    assert [r for r in Role if rules.sees_location(r)] == [Role.auditor]


def test_exif_time_with_and_without_offset():
    facts = images.inspect(io.BytesIO(jpeg(seed=2, taken="2026:08:12 23:30:00", offset="+09:00")), images.JPEG,
                           thumbnail_px=64, tz="Asia/Shanghai")
    assert facts.taken_at == datetime(2026, 8, 12, 14, 30, tzinfo=UTC)
    facts = images.inspect(io.BytesIO(jpeg(seed=2, taken="2026:08:12 23:30:00")), images.JPEG, thumbnail_px=64,
                           tz="Asia/Shanghai")
    assert facts.taken_at == datetime(2026, 8, 12, 15, 30, tzinfo=UTC)
    assert images.inspect(io.BytesIO(jpeg(seed=2, taken="garbage")), images.JPEG, thumbnail_px=64,
                          tz="Asia/Shanghai").taken_at is None

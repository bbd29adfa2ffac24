"""Pure rules of the archive: document kinds, who may read which, and the evidence checks on visit photos."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from fupin.auth.roles import Role
from fupin.households.rules import sees_full_id


class DocumentKind(StrEnum):
    """依据材料: the papers 000 L19 names, the photos of industry, notices and acceptance, and visit photos."""

    hukou = "户口本"
    grain_card = "粮补卡"
    medical_card = "医疗服务证"
    industry_photo = "产业照片"
    notice_photo = "公示照片"
    acceptance_photo = "验收照片"
    visit_photo = "走访照片"
    other = "其他"


class DocumentTarget(StrEnum):
    household = "household"
    member = "member"
    visit = "visit"
    project_step = "project_step"  # a project_transition row (e.g. 验收)
    notice = "notice"  # a project_notice row (公示)
    monitoring_step = "monitoring_step"
    unattached = "unattached"  # uploaded offline before its visit was synced


# Papers that show ID numbers (the household register, the grain-subsidy and medical-service cards).
ID_BEARING = frozenset({DocumentKind.hukou, DocumentKind.grain_card, DocumentKind.medical_card})


def may_read_kind(role: Role, kind: str) -> bool:
    """ID-bearing papers only to the roles that see full ID numbers (households.rules.FULL_ID_ROLES)."""
    return kind not in ID_BEARING or sees_full_id(role)


def sees_location(role: Role) -> bool:
    """Only auditors receive a photo's EXIF location; everyone else downloads it stripped."""
    return role is Role.auditor


EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG)


def distance_km(lat1: Decimal, lon1: Decimal, lat2: Decimal, lon2: Decimal) -> float:
    """Great-circle distance (haversine). A float is fine here: it is a distance, not money."""
    p1, p2 = math.radians(float(lat1)), math.radians(float(lat2))
    dp, dl = p2 - p1, math.radians(float(lon2) - float(lon1))
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def visit_photo_flags(
    *, visit_date: date, taken_at: datetime | None, latitude: Decimal | None, longitude: Decimal | None,
    village: tuple[Decimal, Decimal] | None, max_km: Decimal, tz: str,
) -> list[str]:
    """Why a township should look at a visit photo: taken on another (local) day than the visit, or more
    than `max_km` from the village. A photo without EXIF time or location, or a village without a
    location, cannot be checked on that point and is not flagged for it (not refused either)."""
    flags = []
    if taken_at is not None and taken_at.astimezone(ZoneInfo(tz)).date() != visit_date:
        flags.append("photo_other_day")
    if (latitude is not None and longitude is not None and village is not None
            and distance_km(latitude, longitude, *village) > float(max_km)):
        flags.append("photo_far_from_village")
    return flags

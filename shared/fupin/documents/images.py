"""What a file is, from its first bytes (never its name or declared type), and what a photo says about
itself: EXIF time and GPS, size, a thumbnail; and a JPEG's EXIF location removed without re-encoding."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

from PIL import Image, ImageOps, UnidentifiedImageError

JPEG, PNG, WEBP, PDF = "image/jpeg", "image/png", "image/webp", "application/pdf"
IMAGES = frozenset({JPEG, PNG, WEBP})
ALLOWED = IMAGES | {PDF}
_PIL_FORMAT = {JPEG: "JPEG", PNG: "PNG", WEBP: "WEBP"}
EXIF_IFD, GPS_IFD = 0x8769, 0x8825
DATETIME_ORIGINAL, OFFSET_TIME_ORIGINAL, DATETIME = 36867, 36881, 306
MICRO = Decimal("0.000001")
# A photo of 24 000 × 24 000 pixels is past any phone; a bigger header is a decompression bomb.
Image.MAX_IMAGE_PIXELS = 24_000 * 24_000


def sniff(head: bytes) -> str | None:
    """The media type the magic bytes say, or None for anything not accepted."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head.startswith(b"%PDF-"):
        return PDF
    return None


@dataclass(frozen=True)
class PhotoFacts:
    width: int
    height: int
    taken_at: datetime | None
    latitude: Decimal | None
    longitude: Decimal | None
    thumbnail: bytes  # JPEG


class CorruptImage(ValueError):
    pass


def inspect(source: BinaryIO, media_type: str, *, thumbnail_px: int, tz: str) -> PhotoFacts:
    """Decode enough of an image to prove it is one, read its EXIF and make a thumbnail. JPEGs are decoded
    at a reduced scale (`draft`), so a 12-megapixel photo costs a fraction of its full bitmap in memory."""
    source.seek(0)
    try:
        with Image.open(source, formats=[_PIL_FORMAT[media_type]]) as img:
            width, height = img.size
            exif = img.getexif()
            taken_at = _taken_at(exif, tz)
            latitude, longitude = _location(exif)
            img.draft("RGB", (thumbnail_px, thumbnail_px))
            thumb = ImageOps.exif_transpose(img).convert("RGB")
            thumb.thumbnail((thumbnail_px, thumbnail_px))
            out = io.BytesIO()
            thumb.save(out, "JPEG", quality=80)
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise CorruptImage(str(exc)) from exc
    finally:
        source.seek(0)
    return PhotoFacts(width, height, taken_at, latitude, longitude, out.getvalue())


def _taken_at(exif: Image.Exif, tz: str) -> datetime | None:
    """EXIF DateTimeOriginal ("2026:08:12 09:30:00"), with its offset when the camera wrote one, else read
    in the business time zone (phones write local time)."""
    sub = exif.get_ifd(EXIF_IFD)
    raw = sub.get(DATETIME_ORIGINAL) or exif.get(DATETIME)
    if not isinstance(raw, str):
        return None
    try:
        naive = datetime.strptime(raw.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    offset = sub.get(OFFSET_TIME_ORIGINAL)
    if isinstance(offset, str):
        try:
            return datetime.strptime(f"{naive.isoformat()}{offset.strip()}", "%Y-%m-%dT%H:%M:%S%z")
        except ValueError:
            pass
    return naive.replace(tzinfo=ZoneInfo(tz))


def _location(exif: Image.Exif) -> tuple[Decimal | None, Decimal | None]:
    gps = exif.get_ifd(GPS_IFD)
    try:
        lat = _degrees(gps[2], gps.get(1, "N"), "S")
        lon = _degrees(gps[4], gps.get(3, "E"), "W")
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None, None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None, None
    return lat, lon


def _degrees(dms: Any, ref: Any, negative: str) -> Decimal:
    d, m, s = (Decimal(str(float(x))) for x in dms)
    value = (d + m / 60 + s / 3600).quantize(MICRO, rounding=ROUND_HALF_UP)
    ref = ref.decode() if isinstance(ref, bytes) else str(ref)
    return -value if ref.strip("\x00 ").upper() == negative else value


def jpeg_head_without_gps(head: bytes) -> tuple[bytes, int] | None:
    """Rewrite a JPEG's EXIF segment without its GPS directory, losslessly (no re-encoding).

    `head` is the start of the file (the EXIF segment is among the first, ≤ 64 KiB). Returns (new head,
    bytes of the original it replaces), or None when there is no EXIF location to remove."""
    pos = 2
    while pos + 4 <= len(head) and head[pos] == 0xFF:
        marker = head[pos + 1]
        if marker in (0xDA, 0xD9):  # start of scan / end of image: no more metadata segments
            return None
        (length,) = struct.unpack(">H", head[pos + 2:pos + 4])
        end = pos + 2 + length
        if end > len(head):
            return None
        payload = head[pos + 4:end]
        if marker == 0xE1 and payload.startswith(b"Exif\x00\x00"):
            exif = Image.Exif()
            exif.load(payload[6:])
            if GPS_IFD not in exif:
                return None
            exif.get_ifd(EXIF_IFD)  # loaded, so that it is written back
            del exif[GPS_IFD]
            new_payload = b"Exif\x00\x00" + exif.tobytes()
            segment = b"\xff\xe1" + struct.pack(">H", len(new_payload) + 2) + new_payload
            return head[:pos] + segment, end
        pos = end
    return None


def reencoded_without_metadata(data: bytes, media_type: str) -> bytes:
    """A PNG or WebP saved again without its EXIF (PNG is lossless; WebP is written lossless too)."""
    with Image.open(io.BytesIO(data), formats=[_PIL_FORMAT[media_type]]) as img:
        out = io.BytesIO()
        img.save(out, _PIL_FORMAT[media_type], **({"lossless": True} if media_type == WEBP else {}))
    return out.getvalue()

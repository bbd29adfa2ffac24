"""Test photos made on the fly: JPEGs with the EXIF time and GPS a phone writes."""

from __future__ import annotations

import io
import random
from decimal import Decimal

from PIL import Image

# 1° of latitude on the mean sphere the rules use (R = 6371.0088 km)
KM_PER_DEGREE = Decimal("111.19508")


def jpeg(*, taken: str | None = "2026:08:12 09:30:00", offset: str | None = None,
         lat: Decimal | None = None, lon: Decimal | None = None, size: tuple[int, int] = (640, 480),
         noise: int = 0, seed: int | None = None) -> bytes:
    """A JPEG with DateTimeOriginal `taken` (local time), its OffsetTimeOriginal and a GPS position.
    `noise` > 0 fills the picture with random pixels (bigger, incompressible files); `seed` makes each
    photo's bytes different."""
    rng = random.Random(seed)
    if noise:
        img = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    else:
        img = Image.new("RGB", size, (rng.randrange(256), 160, 90))
    exif = Image.Exif()
    exif[0x0110] = "fupin-test-phone"
    exif[0x010E] = f"photo {seed}"  # ImageDescription: photos of different seeds never share their bytes
    sub: dict[int, str] = {}
    if taken:
        sub[36867] = taken
    if offset:
        sub[36881] = offset
    if sub:
        exif[0x8769] = sub
    if lat is not None and lon is not None:
        exif[0x8825] = {1: "N" if lat >= 0 else "S", 2: _dms(abs(lat)), 3: "E" if lon >= 0 else "W", 4: _dms(abs(lon))}
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif, quality=95)
    return out.getvalue()


def _dms(value: Decimal) -> tuple[float, float, float]:
    # Degrees as one rational with 6 decimals of a degree: exact to the stored precision.
    return (float(value), 0.0, 0.0)


def exif_of(data: bytes) -> tuple[dict[int, object], dict[int, object]]:
    """(Exif sub-IFD, GPS IFD) of a JPEG."""
    exif = Image.open(io.BytesIO(data)).getexif()
    return dict(exif.get_ifd(0x8769)), dict(exif.get_ifd(0x8825))

VILLAGE_LAT, VILLAGE_LON = Decimal("26.570000"), Decimal("106.710000")

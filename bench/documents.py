"""Photo uploads (issue 20): `python -m bench.documents` (part of `make bench`).

N photos of ~3 MB (default 1,000) are uploaded to `POST /documents` (multipart, filesystem storage in a
temporary directory) by C concurrent clients against one uvicorn process. Reported: throughput (photos/s,
MB/s), the API process's RSS after 10 %, 50 % and 100 % of the uploads and its peak (streamed and
spooled to disk, memory must stay flat whatever N), and a floor: the same bytes hashed (sha256) and
written to the same disk by one Python process, no HTTP, no database.

Every photo is the same noisy 3 MB JPEG with its own comment segment, so each has its own sha256 (stored
once each) and all of them decode, carry EXIF and get a thumbnail.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import random
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
from PIL import Image
from sqlalchemy.engine import make_url

from bench.run import KEPT, ROOT, SECRET, PeakRss, machine, scratch_database, server, server_env
from fupin.db import make_engine, make_sessionmaker, unit_of_work


def base_photo(target_bytes: int) -> bytes:
    """A JPEG of about `target_bytes`: random pixels do not compress, so size ≈ pixels × ~0.75 at q90."""
    side = int((target_bytes / 0.75) ** 0.5)
    rng = random.Random(20)
    img = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    exif = Image.Exif()
    exif[0x8769] = {36867: "2026:08:12 09:30:00"}
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def photo(base: bytes, n: int) -> bytes:
    """`base` with a comment segment (FF FE) naming `n` right after the start of image."""
    label = f"bench photo {n:08d}".encode()
    return base[:2] + b"\xff\xfe" + (len(label) + 2).to_bytes(2, "big") + label + base[2:]


async def _seed(owner: str) -> tuple[str, str]:
    """A county, a village, a household and a village committee user; (household id, token)."""
    from fupin.areas import service as area_service
    from fupin.auth import service as auth_service
    from fupin.auth.principal import SYSTEM
    from fupin.auth.roles import Role
    from fupin.households.models import Household
    from fupin.settings import Settings

    engine = make_engine(owner, name="bench-documents-seed", pool_size=1)
    try:
        async with unit_of_work(make_sessionmaker(engine)) as session:
            for code, name in (("539901000000", "基准县"), ("539901100000", "基准乡"), ("539901100200", "基准村")):
                await area_service.create_area(session, principal=SYSTEM, code=code, name=name, population=1000)
            household = Household(area_code="539901100200", household_no="B000001", head_name="户主", address="",
                                  category="general", main_cause="因病", secondary_causes=[], status="registered")
            session.add(household)
            user = await auth_service.create_user(session, username="bench-village", password="bench-password-1",
                                                  role=Role.village_committee, area_code="539901100200")
            await session.flush()
            token = auth_service.issue_token(user, Settings(jwt_secret=SECRET, jwt_ttl_seconds=24 * 3600))
            return str(household.id), token
    finally:
        await engine.dispose()


async def _upload_all(api: str, token: str, household: str, base: bytes, count: int, clients: int,
                      proc: psutil.Process) -> tuple[float, list[float], dict[int, int], int]:
    """(seconds, per-upload latencies, RSS at checkpoints, errors)."""
    marks = {max(1, count // 10): 0, max(1, count // 2): 0, count: 0}
    latencies: list[float] = []
    errors = 0
    done = 0
    next_n = iter(range(count))
    headers = {"Authorization": f"Bearer {token}"}

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors, done
        for n in next_n:
            t0 = time.perf_counter()
            r = await client.post(api + "/documents", headers=headers,
                                  data={"kind": "产业照片", "target_type": "household", "target_id": household},
                                  files={"file": (f"{n}.jpg", photo(base, n), "image/jpeg")})
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 201:
                errors += 1
            done += 1
            if done in marks:
                marks[done] = proc.memory_info().rss

    t0 = time.perf_counter()
    async with httpx.AsyncClient(timeout=120) as client:
        await asyncio.gather(*(worker(client) for _ in range(clients)))
    return time.perf_counter() - t0, latencies, marks, errors


def floor(base: bytes, count: int, root: Path) -> float:
    """sha256 and a content-addressed file write of the same bytes, in one process."""
    t0 = time.perf_counter()
    for n in range(count):
        data = photo(base, n)
        key = hashlib.sha256(data).hexdigest()
        path = root / key[:2] / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.documents", description=__doc__.splitlines()[0] if __doc__ else "")
    p.add_argument("--photos", type=int, default=1000)
    p.add_argument("--mb", type=float, default=3.0)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args(argv)
    if args.smoke:
        args.photos, args.mb, args.clients = 20, 0.2, 2
    started = datetime.now(UTC)
    with scratch_database("fupin_bench_docs") as owner, tempfile.TemporaryDirectory(prefix="fupin-bench-docs-") as tmp:
        work = Path(tmp)
        household, token = asyncio.run(_seed(owner))
        base = base_photo(int(args.mb * 1024 * 1024))
        print(f"seeding {make_url(owner).database}: photo of {len(base):,} bytes")
        floor_s = floor(base, args.photos, work / "floor")
        shutil.rmtree(work / "floor")
        env = server_env(owner, FUPIN_DOCUMENT_DIR=str(work / "api"))
        with server("fupin_api.asgi:app", env) as (api, proc):
            idle = proc.memory_info().rss
            with PeakRss(proc) as peak:
                seconds, latencies, marks, errors = asyncio.run(
                    _upload_all(api, token, household, base, args.photos, args.clients, proc))
        stored = sum(1 for f in (work / "api").rglob("*") if f.is_file())
        mb = len(base) * args.photos / 1e6
        lat = sorted(latencies)
        p50, p99 = statistics.median(lat), lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        mib = 1024 * 1024
        lines = [
            f"## Photo uploads (issue 20) — {started:%Y-%m-%d %H:%M} UTC, `python -m bench.documents`"
            + (" --smoke" if args.smoke else ""),
            "",
            f"- machine: {machine()}; API = one uvicorn process, filesystem storage on the same disk",
            f"- {args.photos:,} photos of {len(base) / mib:.2f} MiB (noisy JPEG, EXIF, each with its own sha256), "
            f"{args.clients} concurrent clients, multipart `POST /documents`; {errors} errors; "
            f"{stored:,} objects stored (photos + thumbnails)",
            "",
            "| path | seconds | photos/s | MB/s | p50 ms | p99 ms |",
            "|---|---:|---:|---:|---:|---:|",
            f"| floor: sha256 + file write, one process | {floor_s:.1f} | {args.photos / floor_s:.1f} | "
            f"{mb / floor_s:.1f} | | |",
            f"| `POST /documents` | {seconds:.1f} | {args.photos / seconds:.1f} | {mb / seconds:.1f} | "
            f"{p50 * 1000:.0f} | {p99 * 1000:.0f} |",
            "",
            "API process RSS (MiB): idle " + f"{idle / mib:.0f}; "
            + "; ".join(f"after {n:,} uploads {rss / mib:.0f}" for n, rss in sorted(marks.items()))
            + f"; peak {peak.peak / mib:.0f}.",
            "",
        ]
        out = ROOT / "bench" / ("results.md" if not args.smoke else ".work/results-documents-smoke.md")
        out.parent.mkdir(parents=True, exist_ok=True)
        old = out.read_text(encoding="utf-8") if out.exists() else "# fupin benchmark results\n"
        out.write_text(old.rstrip("\n") + "\n" + KEPT + "\n" + "\n".join(lines), encoding="utf-8")
        print("\n".join(lines))
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

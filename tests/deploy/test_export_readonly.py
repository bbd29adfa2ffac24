"""Excel exports under the Kubernetes security context: read-only root filesystem, a writable /tmp.

The export runs in a fresh interpreter whose TMPDIR is a new directory and whose working directory is
read-only. Tests run as root, for whom permission bits mean nothing, so an audit hook stands in for
the read-only filesystem: any write outside TMPDIR raises the error a read-only mount would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fupin.errors import Unavailable

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r'''
import os, sys

TMP = os.path.realpath(os.environ["TMPDIR"])
written = []

def read_only_root(event, args):
    if event == "open":
        path, mode, flags = args
        if not isinstance(path, (str, bytes)):
            return
        writing = any(c in mode for c in "wax+") if mode else bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
    elif event in ("os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.truncate", "shutil.rmtree"):
        path, writing = args[0], True
    else:
        return
    if writing:
        full = os.path.realpath(os.fsdecode(path))
        if full not in (os.devnull, TMP) and not full.startswith(TMP + os.sep):
            raise OSError(30, "Read-only file system", full)
        written.append(full)

sys.addaudithook(read_only_root)

import io, json, uuid
from datetime import date, datetime, timezone
from decimal import Decimal
from types import SimpleNamespace

from openpyxl import load_workbook

from fupin.auth.roles import Role
from fupin.dividends.queries import roster_xlsx
from fupin.dividends.schemas import PayoutLine, RunDetail
from fupin.households.importer import roster_xlsx as household_roster
from fupin.subsidies.roster_xlsx import to_xlsx
from fupin.subsidies.schemas import Roster, RosterRow

N = 2000
household = SimpleNamespace(
    household_no="5201231002000001", area_code="520123100200", address="某村一组", category="general",
    main_cause="illness", secondary_causes=[], income_per_capita=Decimal("2300.00"), family_planning=False,
    veteran=False, year_identified=2014, status="poor",
)
member = SimpleNamespace(
    name="张三", id_number="52012319900101123X", relation="户主", labour="none", full_civil_capacity=True,
    in_school=False, health="健康", disability=None,
)
async def _batches():
    for _ in range(2):  # the export writes batch by batch
        yield [(household, member)] * (N // 2)

import asyncio
path = asyncio.run(household_roster(_batches(), Role.county_admin))
with open(path, "rb") as f:
    households = f.read()
os.remove(path)

subsidy_rows = [RosterRow(
    loan_id=uuid.uuid4(), household_id=uuid.uuid4(), head_name="张三", id_number_masked="5201**********123X",
    enterprise_name=None, area_code="520123100200", coop_code="RCC100", principal=Decimal("50000.00"), days=92,
    rate=Decimal("0.043500"), amount=Decimal("548.22"), paid_on=date(2026, 10, 5),
) for _ in range(N)]
subsidies = to_xlsx(Roster(run_id=uuid.uuid4(), township_code="520123100000", quarter="2026Q3",
                           total=Decimal("548.22") * N, rows=subsidy_rows))

now = datetime(2026, 12, 1, tzinfo=timezone.utc)
line = PayoutLine(household_id=uuid.uuid4(), household_no="5201231002000001", head_name="张三",
                  area_code="520123100200", holding_id=uuid.uuid4(), holding_amount=Decimal("10000.00"), days_held=365,
                  amount=Decimal("600.00"), persons=4, per_person=[Decimal("150.00")] * 4)
dividends = roster_xlsx(RunDetail(
    id=uuid.uuid4(), pool_id=uuid.uuid4(), area_code="520123000000", period="2026", period_start=date(2026, 1, 1),
    period_end=date(2026, 12, 31), job_key="dividend.pay:x:2026", status="done", run_on=None,
    total=Decimal("600.00") * N, households=N, persons=4 * N, entry_id=None, requested_by="t", created_at=now,
    paid_at=None, pool_name="光伏", per_person=Decimal("150.00"), insurance_premiums=None, lines=[line] * N,
))

rows = {}
for name, data in (("households", households), ("subsidies", subsidies), ("dividends", dividends)):
    ws = load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
    rows[name] = sum(1 for _ in ws.iter_rows())
print(json.dumps({"rows": rows, "written": written}))
'''


def _run(tmpdir: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONDONTWRITEBYTECODE": "1", "HOME": str(tmpdir)}
    return subprocess.run([sys.executable, "-c", SCRIPT], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


class TestExportsUnderTheKubernetesSecurityContext:
    def test_exports_write_only_to_tmpdir_with_a_read_only_working_directory(self, tmp_path: Path):
        workdir, tmpdir = tmp_path / "app", tmp_path / "tmp"
        workdir.mkdir()
        tmpdir.mkdir()
        workdir.chmod(0o555)
        try:
            done = _run(tmpdir, workdir)
        finally:
            workdir.chmod(0o755)
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert report["rows"] == {"households": 2001, "subsidies": 2002, "dividends": 2003}
        # openpyxl spooled the sheets to temporary files, and they went to TMPDIR (and were removed).
        assert any(Path(p).name.startswith("openpyxl.") for p in report["written"])
        assert list(workdir.iterdir()) == []

    def test_without_a_writable_temporary_directory_the_export_fails_clearly(
        self, monkeypatch: pytest.MonkeyPatch
    ):
        import tempfile

        from fupin import xlsx

        def nowhere() -> str:
            raise FileNotFoundError("No usable temporary directory found in ['/tmp']")

        monkeypatch.setattr(tempfile, "gettempdir", nowhere)
        with pytest.raises(Unavailable) as info:
            xlsx.sheet("x")
        assert info.value.code == "export.no_temp_dir"
        assert info.value.status == 503

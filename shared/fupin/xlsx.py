"""Every .xlsx export is written one way: a write-only workbook, saved to bytes.

Write-only workbooks keep memory flat whatever the row count: openpyxl streams each sheet's rows to a
temporary file (`tempfile`, so TMPDIR, else /tmp) and zips them at save. With a read-only root
filesystem that directory must be a writable mount — the `/tmp` emptyDir in deploy/k8s; without one
an export answers 503 `export.no_temp_dir` instead of a bare FileNotFoundError.
"""

from __future__ import annotations

import io
import tempfile
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from fupin.errors import Unavailable

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _temp_dir() -> str:
    try:
        return tempfile.gettempdir()
    except FileNotFoundError:
        raise Unavailable(
            "export.no_temp_dir",
            "no writable temporary directory for the export: mount one and point TMPDIR at it",
            "没有可写的临时目录,无法导出:请挂载可写目录并设置 TMPDIR",
        ) from None


def sheet(title: str) -> tuple[Workbook, WriteOnlyWorksheet]:
    """A new write-only workbook with one sheet called `title`."""
    _temp_dir()
    wb = Workbook(write_only=True)
    return wb, wb.create_sheet(title)


def cell(ws: WriteOnlyWorksheet, value: Any, *, number_format: str | None = None) -> WriteOnlyCell:
    c = WriteOnlyCell(ws, value=value)
    if number_format:
        c.number_format = number_format
    return c


def to_bytes(wb: Workbook) -> bytes:
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# An .xlsx sheet holds 1,048,576 rows; with the header row, one fewer data row.
MAX_DATA_ROWS = 1_048_575


def to_file(wb: Workbook) -> str:
    """Save to a new temporary file and return its path (the caller deletes it)."""
    with tempfile.NamedTemporaryFile(suffix=".xlsx", dir=_temp_dir(), delete=False) as f:
        wb.save(f)
        return f.name

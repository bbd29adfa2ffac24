"""The installed `fupin` command: the core's commands (`fupin.cli`) plus those that need the API layer."""

from __future__ import annotations

from pathlib import Path

import typer

from fupin.cli import app
from fupin.settings import Settings
from fupin_api.main import create_app
from fupin_api.openapi import render

__all__ = ["app"]


@app.command("export-openapi")
def export_openapi(out: Path = Path("openapi/openapi.json")) -> None:
    """Write the app's OpenAPI document (a test fails when the committed copy is stale)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(create_app(Settings(database_url="postgresql+asyncpg://x@localhost/x"))), encoding="utf-8")
    typer.echo(f"wrote {out}")

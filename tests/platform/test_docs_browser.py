"""`/docs` in a real browser (issue 14): headless Chromium (Debian's `chromium` package) with every host but
the app's unreachable renders Swagger UI from the app's own assets, signs in through its Authorize dialog
(OAuth2 password form against /auth/token) and runs `GET /me` with "Try it out".

Driven over the Chrome DevTools Protocol with `websockets`; skipped, with the reason, where no Chromium is
installed (`apt-get install chromium`)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from fupin.auth.roles import Role
from tests.factories import PASSWORD, new_county, new_user
from tests.live import free_port, live_api, stop

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs a Chromium browser: apt-get install chromium")
websockets = pytest.importorskip("websockets")

PATIENCE = 120.0  # seconds for the page to react on a loaded machine; progress is polled, never slept on


class Page:
    """One tab over the DevTools protocol: commands by id, events kept in order."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        await self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            msg = json.loads(await self.ws.recv())
            if msg.get("id") == ident:
                assert "error" not in msg, msg
                return dict(msg.get("result", {}))
            if "method" in msg:
                self.events.append(msg)

    async def js(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    async def until(self, expression: str, what: str) -> Any:
        deadline = time.monotonic() + PATIENCE
        while not (value := await self.js(expression)):
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.2)
        return value

    async def click(self, selector: str, what: str) -> None:
        await self.until(f"!!document.querySelector({json.dumps(selector)})", what)
        await self.js(f"document.querySelector({json.dumps(selector)}).click()")

    async def type_into(self, selector: str, text: str) -> None:
        """Real key input (React-controlled fields ignore a value set from script)."""
        await self.until(f"!!document.querySelector({json.dumps(selector)})", selector)
        await self.js(f"document.querySelector({json.dumps(selector)}).focus()")
        await self.call("Input.insertText", text=text)

    def requested_urls(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"]


@contextlib.contextmanager
def chromium() -> Iterator[int]:
    """A headless Chromium whose resolver knows no host but 127.0.0.1: the network outside is blocked."""
    assert CHROMIUM is not None
    port = free_port()
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             f"--remote-debugging-port={port}", f"--user-data-dir={profile}", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            yield port
        finally:
            stop(proc)


@contextlib.asynccontextmanager
async def page_of(port: int) -> AsyncIterator[Page]:
    deadline = time.monotonic() + PATIENCE
    async with httpx.AsyncClient(timeout=5) as http:
        while True:
            try:
                targets = (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
                tab = next(t for t in targets if t.get("type") == "page")
                break
            except (httpx.TransportError, StopIteration, ValueError):
                assert time.monotonic() < deadline, "chromium did not open its DevTools port"
                await asyncio.sleep(0.2)
    async with websockets.connect(tab["webSocketDebuggerUrl"], max_size=None) as ws:
        yield Page(ws)


async def test_docs_render_offline_and_an_authorised_try_it_out_succeeds(owner_sessionmaker):
    county = await new_county(owner_sessionmaker, townships=1, villages=1)
    username = await new_user(owner_sessionmaker, role=Role.county_admin, area_code=county.code)
    with live_api() as base, chromium() as port:
        async with page_of(port) as page:
            await page.call("Network.enable")
            await page.call("Page.enable")
            await page.call("Page.navigate", url=f"{base}/docs")
            await page.until("document.querySelectorAll('.opblock').length > 100", "the operations to render")
            assert await page.js("!!document.querySelector('.swagger-ui .info .title')")

            # Sign in through the Authorize dialog: the browser posts the OAuth2 password form to /auth/token.
            await page.click(".auth-wrapper .btn.authorize", "the Authorize button")
            await page.type_into("#oauth_username", username)
            await page.type_into("#oauth_password", PASSWORD)
            await page.click(".auth-btn-wrapper .btn.modal-btn.auth.authorize", "the dialog's Authorize button")
            await page.until("[...document.querySelectorAll('.auth-btn-wrapper button')]"
                             ".some(b => b.textContent.trim() === 'Logout')", "the sign-in to succeed")
            await page.click(".btn-done, .close-modal", "the dialog's close button")

            # GET /me: expand, Try it out, Execute; the live response table shows 200 and the user.
            me = ("[...document.querySelectorAll('.opblock.opblock-get')].find(b => "
                  "b.querySelector('.opblock-summary-path')?.getAttribute('data-path') === '/me')")
            await page.until(f"!!({me})", "GET /me")
            await page.js(f"{me}.querySelector('button.opblock-summary-control').click()")
            await page.until(f"!!{me}.querySelector('.try-out__btn')", "Try it out")
            await page.js(f"{me}.querySelector('.try-out__btn').click()")
            await page.until(f"!!{me}.querySelector('.btn.execute')", "Execute")
            await page.js(f"{me}.querySelector('.btn.execute').click()")
            status = await page.until(
                f"{me}.querySelector('.live-responses-table tbody td.response-col_status')?.textContent.trim()",
                "the response")
            assert status.startswith("200"), status
            body = await page.js(f"{me}.querySelector('.live-responses-table tbody .response-col_description')"
                                 f"?.textContent")
            assert username in body

            urls = page.requested_urls()
            assert f"{base}/docs-assets/swagger-ui-bundle.js" in urls  # the app's own copy of Swagger UI
            assert any(u.endswith("/auth/token") for u in urls), urls
            foreign = [u for u in urls if not u.startswith((base, "data:", "blob:", "about:"))]
            assert foreign == [], f"/docs fetched from outside the app: {foreign}"

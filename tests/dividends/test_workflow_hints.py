"""A dividend holding says what may be done next (issue 14): renew or redeem while open, by roles that manage
holdings; nothing once redeemed or for readers."""

from __future__ import annotations

from fupin.auth.roles import Role
from tests.dividends.factories import make_household
from tests.dividends.test_dividends import _coop_pool, _hold, _pool, _setup
from tests.factories import token_for


async def test_open_holdings_offer_renew_and_redeem_to_managers_only(client, owner_sessionmaker, test_settings):
    county, office = await _setup(owner_sessionmaker, test_settings)
    township = county.townships[0]
    auditor = await token_for(owner_sessionmaker, test_settings, role=Role.auditor, area_code=county.code)
    pool_id = await _pool(client, office, _coop_pool(township))
    hid = await make_household(owner_sessionmaker, village=county.villages[township][0])
    h = await _hold(client, office, pool_id, hid, "10000")
    assert h["allowed_actions"] == ["renew", "redeem"]
    url = f"/dividend-pools/{pool_id}/holdings"
    assert (await client.get(url, headers=auditor)).json()["items"][0]["allowed_actions"] == []
    r = await client.post(f"{url}/{h['id']}/redeem", headers=office, json={"on": "2023-01-10"})
    assert r.status_code == 200, r.text
    assert r.json()["allowed_actions"] == []
    assert (await client.get(url, headers=office)).json()["items"][0]["allowed_actions"] == []

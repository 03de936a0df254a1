"""Several hub processes behind one balancer: a session started on one works
on another (sessions live in Redis), and an agent's stream on one hears what
happens on another (the Redis bus), still filtered by what they may see."""

from __future__ import annotations

import asyncio

from tests.web.conftest import browser, inbound, sign_in
from tests.web.test_permissions import stream


async def test_a_session_and_the_stream_work_across_hub_processes(team_hub, start_hub):
    other = await start_hub(team_hub.runtime.settings, with_worker=False)
    tab = other.client  # a browser talking to the second process...
    async with browser(team_hub) as first_tab:
        csrf = await sign_in(first_tab, "lan@example.vn")
        cookie = first_tab.cookie_jar.filter_cookies(team_hub.client.make_url("/"))["hub_session"]
        # ...with the cookie the first process set.
        me = await tab.get("/api/v1/agents/me", headers={"Cookie": f"hub_session={cookie.value}"})
        assert (await me.json())["email"] == "lan@example.vn"
        put = await tab.put(
            "/api/v1/agents/me/presence",
            json={"presence": "online"},
            headers={"Cookie": f"hub_session={cookie.value}", "X-CSRF-Token": csrf},
        )
        assert put.status == 200

    lan_on_other = await stream(other, team_hub.lan)
    minh_on_other = await stream(other, team_hub.minh)
    support = await inbound(team_hub, "m1", "a", account="shop", text="hỏi bộ phận hỗ trợ")

    async def next_message(ws) -> dict:
        while True:
            frame = await asyncio.wait_for(ws.receive_json(), timeout=10)
            if frame.get("event") == "message.created":
                return frame["data"]["message"]

    assert (await next_message(lan_on_other))["conversation_id"] == support
    sales = await inbound(team_hub, "m2", "b", account="crm", text="hỏi bộ phận bán hàng")
    assert (await next_message(minh_on_other))["conversation_id"] == sales  # not support's
    for ws in (lan_on_other, minh_on_other):
        await ws.close()

"""The API's description: served as OpenAPI 3.1 and as a page, covering every
route the hub serves under /api/v1 with its body and answer."""

from __future__ import annotations

from hub.web.openapi import OPERATIONS


async def test_every_api_route_is_described_with_its_body_and_answer(team_hub):
    response = await team_hub.client.get("/api/v1/openapi.json")  # no token needed
    assert response.status == 200
    spec = await response.json()
    assert spec["openapi"].startswith("3.1")
    served = {
        (
            route.method,
            route.resource.get_info().get("path") or route.resource.get_info()["formatter"],
        )
        for route in team_hub.app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    served = {(m, p) for m, p in served if p.startswith("/api/v1")} - {
        ("GET", "/api/v1/openapi.json")
    }
    undocumented = served - set(OPERATIONS)
    assert not undocumented, f"describe these in hub.web.openapi.OPERATIONS: {undocumented}"
    for method, path in served:
        operation = spec["paths"][path][method.lower()]
        assert operation["summary"] and operation["responses"]["2XX"]["description"]
    reply = spec["paths"]["/api/v1/conversations/{id}/messages"]["post"]
    assert "text" in reply["requestBody"]["content"]["application/json"]["schema"]["properties"]
    listing = spec["paths"]["/api/v1/conversations"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"status", "q", "label", "cursor"}
    agent = spec["components"]["schemas"]["Agent"]
    assert "password_hash" not in agent["properties"]


async def test_the_readable_page_lists_the_operations(team_hub):
    response = await team_hub.client.get("/api/docs")
    assert response.status == 200
    page = await response.text()
    assert (
        "/api/v1/conversations/{id}/assign" in page
        and "Content-Security-Policy" in response.headers
    )

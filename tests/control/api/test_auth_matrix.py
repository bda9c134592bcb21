"""Every route of the OpenAPI document refuses a request without a token (401), and every
route that changes something refuses a viewer (403) — before it looks at the request."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.support.control import Control

#: Routes a viewer may call although they are not reads: anyone may stop everything.
VIEWER_MAY = {("POST", "/halt"), ("POST", "/experiments/validate")}
OPEN = {("GET", "/health")}


def routes(control: Control) -> list[tuple[str, str]]:
    document: dict[str, Any] = httpx.get(f"{control.url}/openapi.json").json()
    found = []
    for path, operations in document["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        found += [(method.upper(), concrete) for method in operations]
    return found


def test_every_route_but_health_answers_401_without_a_token(control: Control) -> None:
    found = routes(control)
    assert len(found) >= 20
    with httpx.Client(base_url=control.url) as anonymous:
        for method, path in found:
            answer = anonymous.request(method, path, json={})
            expected = 200 if (method, path) in OPEN else 401
            assert answer.status_code == expected, (method, path, answer.text)
            if expected == 401:
                assert answer.json()["detail"].startswith("missing bearer token")


def test_every_route_that_changes_something_answers_403_to_a_viewer(control: Control) -> None:
    viewer = control.as_("viewer")
    changing = [(m, p) for m, p in routes(control) if m != "GET" and (m, p) not in VIEWER_MAY]
    assert len(changing) >= 10
    for method, path in changing:
        answer = viewer.request(method, path, json={})
        assert answer.status_code == 403, (method, path, answer.text)
        assert "needs the operator role" in answer.json()["detail"] or "needs the admin role" in answer.json()["detail"]
    assert viewer.get("/audit").status_code == 403

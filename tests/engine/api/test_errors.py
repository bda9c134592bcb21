"""Transport-level behaviour: routing, 404/405, headers, browser block, error bodies, decoding."""

from __future__ import annotations

import httpx
import pytest

from tests.engine.api.helpers import (
    add_toxic,
    all_proxies,
    assert_down,
    assert_error,
    assert_json,
    create_proxy,
    error_message,
    free_port,
    toxics_of,
)
from tests.support.engine import EchoServer

MAX_BODY = 1024 * 1024

# -- routing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/", "/nope", "/proxy", "/toxics", "/proxies/a/b", "/proxies/a/toxics/b/c", "/versions", "/metrics"],
)
def test_unknown_path_is_a_plain_text_404(api: httpx.Client, path: str) -> None:
    response = api.get(path)
    assert response.status_code == 404
    assert response.content == b"404 page not found\n"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/proxies/"), ("POST", "/proxies/"), ("GET", "/version/"), ("POST", "/reset/"), ("POST", "/populate/")],
)
def test_trailing_slash_is_a_404(api: httpx.Client, method: str, path: str) -> None:
    response = api.request(method, path, json={"name": "slash", "upstream": "127.0.0.1:1"})
    assert response.status_code == 404
    assert response.content == b"404 page not found\n"
    assert all_proxies(api) == {}


def test_trailing_slash_on_a_proxy_path_is_a_404(api: httpx.Client, echo_server: EchoServer) -> None:
    create_proxy(api, "p", echo_server.address)
    assert api.get("/proxies/p/").status_code == 404
    assert api.get("/proxies/p/toxics/").status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/version"),
        ("POST", "/version"),
        ("GET", "/reset"),
        ("DELETE", "/reset"),
        ("GET", "/populate"),
        ("PUT", "/proxies"),
        ("DELETE", "/proxies"),
        ("PATCH", "/proxies"),
        ("PUT", "/proxies/p"),
        ("PUT", "/proxies/p/toxics"),
        ("DELETE", "/proxies/p/toxics"),
        ("PUT", "/proxies/p/toxics/t"),
    ],
)
def test_known_path_with_wrong_method_is_an_empty_405(api: httpx.Client, method: str, path: str) -> None:
    response = api.request(method, path)
    assert response.status_code == 405
    assert response.content == b""


@pytest.mark.parametrize(("method", "path"), [("HEAD", "/version"), ("HEAD", "/proxies"), ("OPTIONS", "/proxies")])
def test_head_and_options_are_not_handled(api: httpx.Client, method: str, path: str) -> None:
    # gorilla/mux matches GET routes for GET only: HEAD (and OPTIONS) get an empty 405.
    response = api.request(method, path)
    assert response.status_code == 405
    assert response.content == b""


def test_wrong_method_changes_nothing(api: httpx.Client, echo_server: EchoServer) -> None:
    create_proxy(api, "p", echo_server.address)
    before = all_proxies(api)
    assert api.put("/proxies/p", json={"enabled": False}).status_code == 405
    assert api.request("DELETE", "/proxies").status_code == 405
    assert all_proxies(api) == before


# -- headers -------------------------------------------------------------------------------


def _assert_headers(response: httpx.Response) -> str:
    request_id = response.headers.get("x-toxiproxy-request-id")
    assert request_id is not None, dict(response.headers)
    assert len(request_id) == 20
    assert request_id.isalnum()
    assert response.headers.get("x-chaos-service-version")
    return request_id


def test_request_id_on_version_for_curl(api: httpx.Client) -> None:
    response = api.get("/version", headers={"User-Agent": "curl/8.5.0"})
    assert response.status_code == 200
    _assert_headers(response)


def test_every_kind_of_response_carries_the_headers(api: httpx.Client, echo_server: EchoServer) -> None:
    responses = [
        api.post("/proxies", json={"name": "h", "upstream": echo_server.address}),  # 201
        api.get("/proxies"),  # 200
        api.get("/proxies/missing"),  # 404 API error
        api.post("/proxies", content=b""),  # 400
        api.get("/nope"),  # 404 routing
        api.delete("/version"),  # 405
        api.delete("/proxies/h"),  # 204
        api.get("/proxies", headers={"User-Agent": "Mozilla/5.0"}),  # 403
    ]
    assert [r.status_code for r in responses] == [201, 200, 404, 400, 404, 405, 204, 403]
    ids = [_assert_headers(r) for r in responses]
    assert len(set(ids)) == len(ids), "request ids must differ per request"


@pytest.mark.parametrize(
    "user_agent",
    ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36", "Mozilla/", "Mozilla/4.0 (compatible; MSIE 6.0)"],
)
def test_browser_user_agent_gets_403(api: httpx.Client, user_agent: str) -> None:
    response = api.get("/proxies", headers={"User-Agent": user_agent})
    assert response.status_code == 403
    assert response.content == b"User agent not allowed\n"
    assert response.headers["content-type"].startswith("text/plain")


def test_browser_cannot_create_a_proxy(api: httpx.Client, echo_server: EchoServer) -> None:
    port = free_port()
    response = api.post(
        "/proxies",
        json={"name": "csrf", "upstream": echo_server.address, "listen": f"127.0.0.1:{port}"},
        headers={"User-Agent": "Mozilla/5.0"},
    )
    assert response.status_code == 403
    assert response.content == b"User agent not allowed\n"
    assert all_proxies(api) == {}
    assert_down(port)
    assert api.post("/reset", headers={"User-Agent": "Mozilla/5.0"}).status_code == 403


@pytest.mark.parametrize("user_agent", ["Wget/2.1", "curl/8.5.0", "toxiproxy-cli", "mozilla/5.0", "xMozilla/5.0"])
def test_non_browser_user_agent_is_served(api: httpx.Client, user_agent: str) -> None:
    response = api.get("/proxies", headers={"User-Agent": user_agent})
    assert response.status_code == 200
    assert response.json() == {}


# -- fixed error messages ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/proxies/ghost"),
        ("PATCH", "/proxies/ghost"),
        ("POST", "/proxies/ghost"),
        ("DELETE", "/proxies/ghost"),
        ("GET", "/proxies/ghost/toxics"),
        ("POST", "/proxies/ghost/toxics"),
        ("GET", "/proxies/ghost/toxics/t"),
        ("PATCH", "/proxies/ghost/toxics/t"),
        ("POST", "/proxies/ghost/toxics/t"),
        ("DELETE", "/proxies/ghost/toxics/t"),
    ],
)
def test_unknown_proxy_is_404_on_every_proxy_route(api: httpx.Client, method: str, path: str) -> None:
    # A body that would be invalid anyway: the proxy lookup comes first.
    response = api.request(method, path, content=b"{not json")
    assert_error(response, 404, "proxy not found")
    assert all_proxies(api) == {}


@pytest.mark.parametrize(("method"), ["GET", "PATCH", "POST", "DELETE"])
def test_unknown_toxic_is_404(api: httpx.Client, echo_server: EchoServer, method: str) -> None:
    create_proxy(api, "p", echo_server.address)
    add_toxic(api, "p", type="latency", name="real", attributes={"latency": 5})
    response = api.request(method, "/proxies/p/toxics/ghost", content=b"{not json")
    assert_error(response, 404, "toxic not found")
    assert [t["name"] for t in toxics_of(api, "p")] == ["real"]


def test_missing_name_and_upstream_messages(api: httpx.Client) -> None:
    assert_error(
        api.post("/proxies", json={"name": "", "listen": "", "upstream": ""}), 400, "missing required field: name"
    )
    assert_error(api.post("/proxies", json={"upstream": "127.0.0.1:1"}), 400, "missing required field: name")
    assert_error(
        api.post("/proxies", json={"name": "test", "listen": "", "upstream": ""}),
        400,
        "missing required field: upstream",
    )
    assert_error(api.post("/proxies", json={"name": "test"}), 400, "missing required field: upstream")
    assert all_proxies(api) == {}


def test_conflict_messages(api: httpx.Client, echo_server: EchoServer) -> None:
    create_proxy(api, "p", echo_server.address)
    assert_error(api.post("/proxies", json={"name": "p", "upstream": echo_server.address}), 409, "proxy already exists")
    add_toxic(api, "p", type="noop", name="n")
    assert_error(api.post("/proxies/p/toxics", json={"type": "noop", "name": "n"}), 409, "toxic already exists")


def test_invalid_stream_message(api: httpx.Client, echo_server: EchoServer) -> None:
    create_proxy(api, "p", echo_server.address)
    response = api.post("/proxies/p/toxics", json={"type": "latency", "stream": "walrustream"})
    assert_error(response, 400, "stream was invalid, can be either upstream or downstream")
    assert toxics_of(api, "p") == []


# -- request body decoding -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "bad request body: EOF"),
        (b"   \n", "bad request body: EOF"),
        (b'{"name":"a","upstream":', None),
        (b"{", None),
        (b"xyz", None),
        (b"[]", None),
        (b'"just a string"', None),
        (b"42", None),
        (b'{"name":5,"upstream":"127.0.0.1:1"}', None),
        (b'{"name":"a","upstream":"127.0.0.1:1","enabled":"true"}', None),
        (b'{"name":"a","upstream":"127.0.0.1:1","enabled":1}', None),
        (b'{"name":"a","upstream":["127.0.0.1:1"]}', None),
        (b'{"name":"a","upstream":"127.0.0.1:1","listen":NaN}', None),
        (b"\xff\xfe{}", None),
    ],
)
def test_undecodable_create_body_is_400(api: httpx.Client, body: bytes, message: str | None) -> None:
    text = error_message(api.post("/proxies", content=body), 400)
    assert text.startswith("bad request body: "), text
    if message is not None:
        assert text == message
    assert all_proxies(api) == {}


def test_undecodable_toxic_bodies_are_400(api: httpx.Client, echo_server: EchoServer) -> None:
    create_proxy(api, "p", echo_server.address)
    add_toxic(api, "p", type="latency", name="lat", attributes={"latency": 10})
    before = toxics_of(api, "p")
    assert_error(api.post("/proxies/p/toxics", content=b""), 400, "bad request body: EOF")
    for body in [
        b"{",
        b"[1]",
        b'{"type":7}',
        b'{"type":"latency","toxicity":"1"}',
        b'{"type":"latency","attributes":[]}',
    ]:
        text = error_message(api.post("/proxies/p/toxics", content=body), 400)
        assert text.startswith("bad request body: "), (body, text)
    assert_error(api.patch("/proxies/p/toxics/lat", content=b""), 400, "bad request body: EOF")
    for body in [b"{", b'{"toxicity":true}', b'{"attributes":"latency=5"}']:
        text = error_message(api.patch("/proxies/p/toxics/lat", content=body), 400)
        assert text.startswith("bad request body: "), (body, text)
    assert toxics_of(api, "p") == before


def test_trailing_bytes_after_the_first_json_value_are_ignored(api: httpx.Client, echo_server: EchoServer) -> None:
    body = f'{{"name":"trail","upstream":"{echo_server.address}"}} this is not json'.encode()
    assert assert_json(api.post("/proxies", content=body), 201)["name"] == "trail"


def test_request_content_type_is_ignored(api: httpx.Client, echo_server: EchoServer) -> None:
    body = f'{{"name":"ct","upstream":"{echo_server.address}"}}'
    response = api.post("/proxies", content=body, headers={"Content-Type": "text/plain"})
    assert assert_json(response, 201)["name"] == "ct"


def _padded_body(name: str, upstream: str, size: int) -> bytes:
    head = f'{{"name":"{name}","upstream":"{upstream}","pad":"'.encode()
    tail = b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def test_body_of_exactly_one_mebibyte_is_accepted(api: httpx.Client, echo_server: EchoServer) -> None:
    body = _padded_body("big", echo_server.address, MAX_BODY)
    assert len(body) == MAX_BODY
    assert assert_json(api.post("/proxies", content=body), 201)["name"] == "big"


def test_body_over_one_mebibyte_is_400_and_changes_nothing(api: httpx.Client, echo_server: EchoServer) -> None:
    body = _padded_body("huge", echo_server.address, MAX_BODY + 1)
    text = error_message(api.post("/proxies", content=body), 400)
    assert text.startswith("bad request body"), text
    assert all_proxies(api) == {}

    create_proxy(api, "p", echo_server.address)
    toxic = b'{"type":"latency","name":"t","pad":"' + b"x" * MAX_BODY + b'"}'
    error_message(api.post("/proxies/p/toxics", content=toxic), 400)
    assert toxics_of(api, "p") == []
    items = b'[{"name":"q","upstream":"' + echo_server.address.encode() + b'","pad":"' + b"x" * MAX_BODY + b'"}]'
    response = api.post("/populate", content=items)
    assert response.status_code == 400
    assert response.json()["proxies"] is None
    assert list(all_proxies(api)) == ["p"]


def test_a_lone_surrogate_escape_is_a_400_not_a_500(api: httpx.Client) -> None:
    body = b'{"name": "bad\\ud800", "upstream": "127.0.0.1:9", "listen": "127.0.0.1:0"}'
    response = api.post("/proxies", content=body)
    assert response.status_code == 400
    assert response.json()["error"].startswith("bad request body: ")
    assert api.get("/proxies").json() == {}

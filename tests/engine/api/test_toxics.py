"""Toxic CRUD: create with defaults, list/show, conflicts, ordering, partial update, delete."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.engine.api.helpers import (
    TOXIC_KEYS,
    add_toxic,
    assert_empty,
    assert_error,
    assert_json,
    connect,
    create_proxy,
    echo,
    error_message,
    port_of,
    toxics_of,
)
from tests.support.engine import EchoServer

ATTRIBUTES: dict[str, dict[str, int]] = {
    "latency": {"latency": 0, "jitter": 0},
    "bandwidth": {"rate": 0},
    "slow_close": {"delay": 0},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},
    "limit_data": {"bytes": 0},
    "noop": {},
}


@pytest.fixture
def proxy(api: httpx.Client, echo_server: EchoServer) -> str:
    create_proxy(api, "p", echo_server.address)
    return "p"


def test_new_proxy_has_no_toxics(api: httpx.Client, proxy: str) -> None:
    response = api.get(f"/proxies/{proxy}/toxics")
    assert assert_json(response, 200) == []
    assert response.content == b"[]"


def test_add_toxic_returns_200_and_the_toxic(api: httpx.Client, proxy: str) -> None:
    body = {"name": "foobar", "type": "latency", "attributes": {"latency": 100, "jitter": 10}}
    response = api.post(f"/proxies/{proxy}/toxics", json=body)
    toxic = assert_json(response, 200)
    assert list(toxic) == TOXIC_KEYS
    assert response.content == (
        b'{"attributes":{"latency":100,"jitter":10},"name":"foobar","type":"latency",'
        b'"stream":"downstream","toxicity":1}'
    )
    assert toxics_of(api, proxy) == [toxic]
    assert assert_json(api.get(f"/proxies/{proxy}/toxics/foobar"), 200) == toxic
    assert api.get(f"/proxies/{proxy}").json()["toxics"] == [toxic]


@pytest.mark.parametrize("type_name", sorted(ATTRIBUTES))
def test_defaults_for_every_type(api: httpx.Client, proxy: str, type_name: str) -> None:
    toxic = assert_json(api.post(f"/proxies/{proxy}/toxics", json={"type": type_name}), 200)
    assert toxic == {
        "attributes": ATTRIBUTES[type_name],
        "name": f"{type_name}_downstream",
        "type": type_name,
        "stream": "downstream",
        "toxicity": 1,
    }
    assert list(toxic["attributes"]) == list(ATTRIBUTES[type_name])


def test_add_noop_with_a_name(api: httpx.Client, proxy: str) -> None:
    toxic = add_toxic(api, proxy, name="foobar", type="noop")
    assert toxic == {"attributes": {}, "name": "foobar", "type": "noop", "stream": "downstream", "toxicity": 1}


def test_add_multiple_toxics(api: httpx.Client, proxy: str) -> None:
    add_toxic(api, proxy, name="latency1", type="latency")
    add_toxic(api, proxy, name="latency2", type="latency")
    toxics = toxics_of(api, proxy)
    assert [t["name"] for t in toxics] == ["latency1", "latency2"]
    for toxic in toxics:
        assert toxic["stream"] == "downstream"
        assert toxic["toxicity"] == 1
        assert toxic["attributes"] == {"latency": 0, "jitter": 0}


def test_null_fields_mean_defaults(api: httpx.Client, proxy: str) -> None:
    body = {"type": "latency", "name": None, "stream": None, "toxicity": None, "attributes": None}
    toxic = add_toxic(api, proxy, **body)
    assert toxic == {**toxic, "name": "latency_downstream", "stream": "downstream", "toxicity": 1}
    assert toxic["attributes"] == {"latency": 0, "jitter": 0}


def test_empty_name_means_the_default_name(api: httpx.Client, proxy: str) -> None:
    assert add_toxic(api, proxy, type="slicer", name="", stream="upstream")["name"] == "slicer_upstream"


def test_json_keys_and_attribute_names_are_case_insensitive(api: httpx.Client, proxy: str) -> None:
    body = {"Name": "bw", "TYPE": "bandwidth", "Stream": "upstream", "Toxicity": 0.5, "Attributes": {"Rate": 100}}
    toxic = assert_json(api.post(f"/proxies/{proxy}/toxics", json=body), 200)
    assert toxic == {
        "attributes": {"rate": 100},
        "name": "bw",
        "type": "bandwidth",
        "stream": "upstream",
        "toxicity": 0.5,
    }
    toxic = add_toxic(api, proxy, type="latency", attributes={"Latency": 100, "JITTER": 5})
    assert toxic["attributes"] == {"latency": 100, "jitter": 5}


def test_unknown_top_level_keys_are_ignored(api: httpx.Client, proxy: str) -> None:
    toxic = add_toxic(api, proxy, type="noop", name="n", colour="red", ttl_ms=5)
    assert toxic["name"] == "n"


def test_integral_float_attributes_are_accepted(api: httpx.Client, proxy: str) -> None:
    response = api.post(f"/proxies/{proxy}/toxics", json={"type": "latency", "attributes": {"latency": 100.0}})
    toxic = assert_json(response, 200)
    assert toxic["attributes"] == {"latency": 100, "jitter": 0}
    assert '"latency":100,' in response.text


# -- streams -------------------------------------------------------------------------------


def test_stream_is_echoed_as_sent_and_parsed_case_insensitively(api: httpx.Client, proxy: str) -> None:
    add_toxic(api, proxy, type="latency", name="down")
    toxic = add_toxic(api, proxy, type="latency", stream="UpStream")
    assert toxic["stream"] == "UpStream"
    assert toxic["name"] == "latency_UpStream"
    # Parsed as upstream: listed before the downstream toxic.
    assert [t["name"] for t in toxics_of(api, proxy)] == ["latency_UpStream", "down"]


@pytest.mark.parametrize("stream", ["", "walrustream", "up", "both", " upstream"])
def test_invalid_stream_is_400_and_adds_nothing(api: httpx.Client, proxy: str, stream: str) -> None:
    response = api.post(f"/proxies/{proxy}/toxics", json={"type": "latency", "name": "s", "stream": stream})
    assert_error(response, 400, "stream was invalid, can be either upstream or downstream")
    assert toxics_of(api, proxy) == []


def test_upstream_toxics_are_listed_first_in_creation_order(api: httpx.Client, proxy: str) -> None:
    for name, stream in [("d1", "downstream"), ("u1", "upstream"), ("d2", "downstream"), ("u2", "upstream")]:
        add_toxic(api, proxy, type="noop", name=name, stream=stream)
    assert [t["name"] for t in toxics_of(api, proxy)] == ["u1", "u2", "d1", "d2"]
    assert [t["name"] for t in api.get(f"/proxies/{proxy}").json()["toxics"]] == ["u1", "u2", "d1", "d2"]


# -- conflicts -----------------------------------------------------------------------------


def test_conflicting_name_is_409_and_keeps_the_original(api: httpx.Client, proxy: str) -> None:
    original = add_toxic(api, proxy, name="foobar", type="latency", attributes={"latency": 7})
    response = api.post(f"/proxies/{proxy}/toxics", json={"name": "foobar", "type": "slow_close"})
    assert_error(response, 409, "toxic already exists")
    assert toxics_of(api, proxy) == [original]


def test_conflicting_name_across_streams_is_409(api: httpx.Client, proxy: str) -> None:
    original = add_toxic(api, proxy, name="foobar", type="latency", stream="upstream")
    response = api.post(f"/proxies/{proxy}/toxics", json={"name": "foobar", "type": "latency", "stream": "downstream"})
    assert_error(response, 409, "toxic already exists")
    assert toxics_of(api, proxy) == [original]


def test_default_names_on_both_streams_coexist(api: httpx.Client, proxy: str) -> None:
    assert add_toxic(api, proxy, type="latency", stream="upstream")["name"] == "latency_upstream"
    assert add_toxic(api, proxy, type="latency", stream="downstream")["name"] == "latency_downstream"
    response = api.post(f"/proxies/{proxy}/toxics", json={"type": "latency"})
    assert_error(response, 409, "toxic already exists")
    assert [t["name"] for t in toxics_of(api, proxy)] == ["latency_upstream", "latency_downstream"]


def test_same_toxic_name_on_two_proxies_is_fine(api: httpx.Client, proxy: str, echo_server: EchoServer) -> None:
    create_proxy(api, "other", echo_server.address)
    add_toxic(api, proxy, type="noop", name="shared")
    add_toxic(api, "other", type="noop", name="shared")


# -- toxicity ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toxicity", "shown"), [(0.2, "0.2"), (0.5, "0.5"), (0.7, "0.7"), (0.01, "0.01"), (1, "1"), (1.0, "1"), (0, "0")]
)
def test_toxicity_is_shown_in_shortest_float32_form(api: httpx.Client, proxy: str, toxicity: float, shown: str) -> None:
    response = api.post(f"/proxies/{proxy}/toxics", json={"type": "noop", "toxicity": toxicity})
    assert response.status_code == 200
    assert response.text.endswith(f'"toxicity":{shown}}}')
    assert api.get(f"/proxies/{proxy}/toxics/noop_downstream").text.endswith(f'"toxicity":{shown}}}')


@pytest.mark.parametrize("toxicity", [-0.1, 1.5, 2, -1, 100])
def test_toxicity_outside_zero_to_one_is_400(api: httpx.Client, proxy: str, toxicity: float) -> None:
    response = api.post(f"/proxies/{proxy}/toxics", json={"type": "noop", "toxicity": toxicity})
    message = error_message(response, 400)
    assert "toxicity" in message, message
    assert toxics_of(api, proxy) == []


# -- type and attribute validation --------------------------------------------------------


@pytest.mark.parametrize("type_name", ["walrus", "Latency", "LATENCY", "", "down"])
def test_unknown_type_is_400_listing_the_valid_types(api: httpx.Client, proxy: str, type_name: str) -> None:
    message = error_message(api.post(f"/proxies/{proxy}/toxics", json={"type": type_name, "name": "t"}), 400)
    assert message.startswith("invalid toxic type"), message
    assert len(message) > len("invalid toxic type"), "the message should list the valid types"
    for valid in ATTRIBUTES:
        assert valid in message, message
    assert toxics_of(api, proxy) == []


def test_missing_type_is_400(api: httpx.Client, proxy: str) -> None:
    message = error_message(api.post(f"/proxies/{proxy}/toxics", json={"name": "t"}), 400)
    assert message.startswith("invalid toxic type"), message
    assert toxics_of(api, proxy) == []


@pytest.mark.parametrize(
    ("type_name", "attributes", "mentions"),
    [
        ("latency", {"latency": -1}, "latency"),
        ("latency", {"jitter": -100}, "jitter"),
        ("bandwidth", {"rate": -5}, "rate"),
        ("latency", {"latency": 100.5}, "latency"),
        ("slicer", {"delay": 0.1}, "delay"),
        ("latency", {"latency": "100"}, "latency"),
        ("latency", {"latency": True}, "latency"),
        ("latency", {"latency": [1]}, "latency"),
        ("limit_data", {"bytes": 2**63}, "bytes"),
        ("timeout", {"timeout": {"ms": 5}}, "timeout"),
    ],
)
def test_bad_attribute_values_are_400_and_add_nothing(
    api: httpx.Client, proxy: str, type_name: str, attributes: dict[str, Any], mentions: str
) -> None:
    response = api.post(f"/proxies/{proxy}/toxics", json={"type": type_name, "name": "t", "attributes": attributes})
    message = error_message(response, 400)
    assert mentions in message, message
    assert toxics_of(api, proxy) == []


@pytest.mark.parametrize(
    ("type_name", "unknown", "valid"),
    [("latency", "delay", ["jitter", "latency"]), ("bandwidth", "latency", ["rate"]), ("noop", "x", [])],
)
def test_unknown_attribute_is_400_naming_it_and_the_valid_ones(
    api: httpx.Client, proxy: str, type_name: str, unknown: str, valid: list[str]
) -> None:
    response = api.post(f"/proxies/{proxy}/toxics", json={"type": type_name, "attributes": {unknown: 1}})
    message = error_message(response, 400)
    assert unknown in message, message
    for name in valid:
        assert name in message, message
    assert toxics_of(api, proxy) == []


def test_toxics_work_on_a_disabled_proxy(api: httpx.Client, echo_server: EchoServer) -> None:
    create_proxy(api, "off", echo_server.address, enabled=False)
    toxic = add_toxic(api, "off", type="latency", attributes={"latency": 1})
    assert toxics_of(api, "off") == [toxic]
    assert_empty(api.delete("/proxies/off/toxics/latency_downstream"))


def test_errors_are_checked_in_toxiproxy_order(api: httpx.Client, proxy: str) -> None:
    add_toxic(api, proxy, type="latency", name="taken")
    url = f"/proxies/{proxy}/toxics"
    # stream before type
    response = api.post(url, json={"type": "walrus", "name": "new", "stream": "sideways"})
    assert_error(response, 400, "stream was invalid, can be either upstream or downstream")
    # type before name conflict
    message = error_message(api.post(url, json={"type": "walrus", "name": "taken"}), 400)
    assert message.startswith("invalid toxic type"), message
    # name conflict before attributes
    response = api.post(url, json={"type": "latency", "name": "taken", "attributes": {"latency": -1}})
    assert_error(response, 409, "toxic already exists")
    assert [t["name"] for t in toxics_of(api, proxy)] == ["taken"]


# -- update --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PATCH", "POST"])
def test_update_is_a_partial_merge(api: httpx.Client, proxy: str, method: str) -> None:
    add_toxic(api, proxy, name="lat", type="latency", attributes={"latency": 100, "jitter": 10})
    url = f"/proxies/{proxy}/toxics/lat"
    first = assert_json(api.request(method, url, json={"attributes": {"latency": 1000}, "toxicity": 0.5}), 200)
    assert first == {
        "attributes": {"latency": 1000, "jitter": 10},
        "name": "lat",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 0.5,
    }
    second = assert_json(api.request(method, url, json={"attributes": {"latency": 500}}), 200)
    assert second == {**first, "attributes": {"latency": 500, "jitter": 10}}
    third = assert_json(api.request(method, url, json={"toxicity": 0.2}), 200)
    assert third == {**second, "toxicity": 0.2}
    assert toxics_of(api, proxy) == [third]


def test_update_with_case_insensitive_attribute_names(api: httpx.Client, proxy: str) -> None:
    add_toxic(api, proxy, name="lat", type="latency", attributes={"latency": 100, "jitter": 10})
    updated = assert_json(api.patch(f"/proxies/{proxy}/toxics/lat", json={"Attributes": {"LATENCY": 7}}), 200)
    assert updated["attributes"] == {"latency": 7, "jitter": 10}


def test_update_with_null_means_not_given(api: httpx.Client, proxy: str) -> None:
    original = add_toxic(
        api, proxy, name="lat", type="latency", toxicity=0.5, attributes={"latency": 100, "jitter": 10}
    )
    url = f"/proxies/{proxy}/toxics/lat"
    assert assert_json(api.patch(url, json={"attributes": None, "toxicity": None}), 200) == original
    updated = assert_json(api.patch(url, json={"attributes": {"latency": None, "jitter": 5}}), 200)
    assert updated["attributes"] == {"latency": 100, "jitter": 5}
    assert toxics_of(api, proxy) == [updated]


def test_update_ignores_name_type_and_stream(api: httpx.Client, proxy: str) -> None:
    original = add_toxic(api, proxy, name="lat", type="latency", attributes={"latency": 5})
    body = {"name": "renamed", "type": "bandwidth", "stream": "upstream"}
    assert assert_json(api.patch(f"/proxies/{proxy}/toxics/lat", json=body), 200) == original
    assert toxics_of(api, proxy) == [original]


def test_update_keeps_the_chain_position(api: httpx.Client, proxy: str) -> None:
    for name in ["a", "b", "c"]:
        add_toxic(api, proxy, type="latency", name=name)
    api.patch(f"/proxies/{proxy}/toxics/a", json={"attributes": {"latency": 3}})
    assert [t["name"] for t in toxics_of(api, proxy)] == ["a", "b", "c"]


@pytest.mark.parametrize(
    "body",
    [
        {"attributes": {"latency": -1}},
        {"attributes": {"latency": 1.5}},
        {"attributes": {"bogus": 1}},
        {"attributes": {"latency": 1, "bogus": 1}},
        {"toxicity": 1.5},
        {"toxicity": -0.5},
        {"attributes": {"latency": 1}, "toxicity": 3},
    ],
)
def test_bad_update_is_400_and_changes_nothing(api: httpx.Client, proxy: str, body: dict[str, Any]) -> None:
    original = add_toxic(api, proxy, name="lat", type="latency", attributes={"latency": 100, "jitter": 10})
    error_message(api.patch(f"/proxies/{proxy}/toxics/lat", json=body), 400)
    assert toxics_of(api, proxy) == [original]


# -- delete --------------------------------------------------------------------------------


def test_remove_toxic(api: httpx.Client, proxy: str) -> None:
    add_toxic(api, proxy, name="a", type="noop")
    add_toxic(api, proxy, name="b", type="noop", stream="upstream")
    assert_empty(api.delete(f"/proxies/{proxy}/toxics/a"), 204)
    assert [t["name"] for t in toxics_of(api, proxy)] == ["b"]
    assert_error(api.get(f"/proxies/{proxy}/toxics/a"), 404, "toxic not found")
    assert_error(api.delete(f"/proxies/{proxy}/toxics/a"), 404, "toxic not found")
    add_toxic(api, proxy, name="a", type="latency")  # the name is free again


def test_toxics_apply_to_an_open_connection_without_breaking_it(api: httpx.Client, echo_server: EchoServer) -> None:
    created = create_proxy(api, "live", echo_server.address)
    with connect(port_of(created["listen"])) as sock:
        echo(sock, b"one")
        add_toxic(api, "live", type="noop", stream="upstream")
        add_toxic(api, "live", type="latency", attributes={"latency": 1})
        echo(sock, b"two")
        api.patch("/proxies/live/toxics/latency_downstream", json={"attributes": {"latency": 2}})
        echo(sock, b"three")
        assert_empty(api.delete("/proxies/live/toxics/latency_downstream"))
        assert_empty(api.delete("/proxies/live/toxics/noop_upstream"))
        echo(sock, b"four")

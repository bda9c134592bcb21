import pytest

from chaos_service.errors import InvalidToxic
from chaos_service.toxics import REGISTRY, Latency, build_toxic
from chaos_service.toxics.attributes import INT64_MAX


def test_registry_has_exactly_toxiproxys_types() -> None:
    assert set(REGISTRY) == {
        "latency",
        "bandwidth",
        "slow_close",
        "timeout",
        "reset_peer",
        "slicer",
        "limit_data",
        "noop",
    }


@pytest.mark.parametrize("type_name", sorted(REGISTRY))
def test_every_type_builds_with_all_attributes_zero(type_name: str) -> None:
    toxic = build_toxic(type_name, None)
    assert toxic.type_name == type_name
    assert set(toxic.attribute_values()) == {a.name for a in type(toxic).attributes}
    assert all(value == 0 for value in toxic.attribute_values().values())


def test_unknown_type_is_rejected() -> None:
    with pytest.raises(InvalidToxic, match=r"^invalid toxic type$"):
        build_toxic("Latency", {})


def test_attribute_names_match_case_insensitively() -> None:
    assert build_toxic("latency", {"Latency": 100, "JITTER": 5}) == Latency(latency=100, jitter=5)


def test_integral_floats_are_integers() -> None:
    toxic = build_toxic("latency", {"latency": 1000.0})
    assert toxic.attribute_values()["latency"] == 1000
    assert isinstance(toxic.attribute_values()["latency"], int)


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"latency": 100.5}, r"'latency' of toxic type latency must be an integer >= 0 \(ms\), got 100.5$"),
        ({"latency": "100"}, r"must be an integer >= 0 \(ms\), got str '100'$"),
        ({"latency": True}, r"must be an integer >= 0 \(ms\), got bool True$"),
        ({"latency": [1]}, r"must be an integer >= 0 \(ms\), got list \[1\]$"),
        ({"latency": -1}, r"must be an integer >= 0 \(ms\), got -1$"),
        ({"latency": INT64_MAX + 1}, rf"must be an integer from 0 to {INT64_MAX} \(ms\), got {INT64_MAX + 1}$"),
        ({"latencyy": 1}, r"unknown attribute 'latencyy' for toxic type latency \(valid: jitter, latency\)"),
    ],
)
def test_bad_attributes_are_rejected_with_a_clear_message(attributes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidToxic, match=message):
        build_toxic("latency", attributes)


def test_noop_accepts_no_attributes() -> None:
    with pytest.raises(InvalidToxic, match=r"valid: none"):
        build_toxic("noop", {"x": 1})


def test_null_attribute_means_zero() -> None:
    assert build_toxic("latency", {"latency": None}) == Latency(latency=0)

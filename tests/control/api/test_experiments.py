"""/experiments over HTTP: auth on every route, create/list/get/update/delete, validation."""

from __future__ import annotations

import httpx
import pytest

from tests.support.control import Control, quick_experiment


def test_without_a_token_every_route_is_401_with_a_clear_message(control: Control) -> None:
    with httpx.Client(base_url=control.url) as anonymous:
        answer = anonymous.get("/experiments")
        assert answer.status_code == 401
        assert answer.json() == {"detail": "missing bearer token: send 'Authorization: Bearer <token>'"}
        assert answer.headers["www-authenticate"] == "Bearer"
        malformed = anonymous.get("/experiments", headers={"Authorization": "Token abc"})
        assert malformed.status_code == 401 and "malformed Authorization header" in malformed.json()["detail"]
        for secret in ("cst_not-a-token", control.tokens["revoked"]):
            wrong = anonymous.get("/runs", headers={"Authorization": f"Bearer {secret}"})
            assert wrong.status_code == 401 and wrong.json()["detail"] == "unknown or revoked token"
            assert secret not in wrong.text


def test_a_viewer_reads_but_may_not_write(control: Control) -> None:
    answer = control.as_("viewer").post("/experiments", json={"name": "v", "source": quick_experiment()})
    assert answer.status_code == 403
    assert answer.json()["detail"] == "this needs the operator role; the token has viewer"
    assert control.as_("viewer").get("/experiments/v").status_code == 404  # nothing was stored


def test_the_life_of_an_experiment(control: Control) -> None:
    operator, viewer = control.as_("operator"), control.as_("viewer")
    created = operator.post("/experiments", json={"name": "slow-redis", "source": quick_experiment()})
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/experiments/slow-redis"
    body = created.json()
    assert body["title"] == "Redis slowed for a moment" and body["updated_by"].startswith("test-operator")
    again = operator.post("/experiments", json={"name": "slow-redis", "source": quick_experiment()})
    assert again.status_code == 409 and "exists already" in again.json()["detail"]
    assert "slow-redis" in [e["name"] for e in viewer.get("/experiments").json()]
    assert viewer.get("/experiments/slow-redis").json()["source"] == quick_experiment()

    changed = operator.put("/experiments/slow-redis", json={"source": quick_experiment("2s")})
    assert changed.status_code == 200 and "duration: 2s" in changed.json()["source"]
    assert operator.put("/experiments/nope", json={"source": quick_experiment()}).status_code == 404

    assert operator.delete("/experiments/slow-redis").status_code == 204
    gone = viewer.get("/experiments/slow-redis")
    assert gone.status_code == 404 and gone.json()["detail"] == "no experiment 'slow-redis'"
    assert operator.delete("/experiments/slow-redis").status_code == 404


def test_an_invalid_experiment_is_422_naming_line_and_field_and_nothing_is_stored(control: Control) -> None:
    broken = quick_experiment().replace("latency: 20", "latency: -5")
    answer = control.as_("operator").post("/experiments", json={"name": "broken", "source": broken})
    assert answer.status_code == 422
    problems = answer.json()["problems"]
    assert problems and problems[0]["line"] == 9 and "attributes" in problems[0]["path"], problems
    assert control.as_("viewer").get("/experiments/broken").status_code == 404


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"name": "Bad Name", "source": "title: x"}, "experiment name 'Bad Name'"),
        ({"name": "x", "source": "{{{"}, "the experiment is not valid"),
        ({"name": "x"}, "body.source: Field required"),
        ({"name": "x", "source": "title: x", "extra": 1}, "body.extra: Extra inputs are not permitted"),
    ],
)
def test_bad_bodies_are_422_with_what_is_wrong(control: Control, body: dict[str, object], expected: str) -> None:
    answer = control.as_("operator").post("/experiments", json=body)
    assert answer.status_code == 422 and expected in answer.json()["detail"], answer.text


def test_validate_says_what_the_file_would_do_without_storing_it(control: Control) -> None:
    answer = control.as_("viewer").post("/experiments/validate", json={"name": "dry", "source": quick_experiment()})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "valid": True,
        "title": "Redis slowed for a moment",
        "probes": ["cache"],
        "faults": ["slow: latency on redis"],
        "length_seconds": 4.0,
    }
    assert control.as_("viewer").get("/experiments/dry").status_code == 404

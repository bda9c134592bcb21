"""/health, /metrics, /audit and /schedules over HTTP, and no secret in the server's output."""

from __future__ import annotations

import httpx

from tests.support.control import Control, quick_experiment


def test_health_needs_no_token_and_tells_nothing_secret(control: Control) -> None:
    with httpx.Client(base_url=control.url) as anonymous:
        answer = anonymous.get("/health")
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ok",
        "replica": "r1",
        "store": "ok",
        "engine": "ok",
        "toxiproxy": None,
        "halted": False,
    }


def test_metrics_count_runs_faults_and_api_latency_for_viewers(control: Control) -> None:
    viewer = control.as_("viewer")
    viewer.get("/runs")
    answer = viewer.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    assert "chaos_active_faults 0.0" in text and "chaos_halted 0.0" in text
    assert 'chaos_api_request_duration_seconds_count{method="GET",route="/runs",status="200"}' in text
    with httpx.Client(base_url=control.url) as anonymous:
        assert anonymous.get("/metrics").status_code == 401


def test_the_audit_log_is_for_admins(control: Control) -> None:
    operator = control.as_("operator")
    assert operator.post("/experiments", json={"name": "audited", "source": quick_experiment()}).is_success
    assert operator.get("/audit").status_code == 403
    entries = control.as_("admin").get("/audit", params={"limit": 50}).json()
    created = [e for e in entries if e["action"] == "experiment.create" and e["target"] == "audited"]
    assert len(created) == 1 and created[0]["actor"].startswith("test-operator (")


def test_a_schedule_is_stored_with_its_next_fire_times(control: Control) -> None:
    operator = control.as_("operator")
    assert operator.post("/experiments", json={"name": "weekly", "source": quick_experiment()}).is_success
    body = {"cron": "0 14 * * thu", "timezone": "Europe/Berlin", "experiments": ["weekly"], "enabled": False}
    created = operator.put("/schedules/thursday", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["next_fire_times"] == []  # disabled
    enabled = operator.put("/schedules/thursday", json={**body, "enabled": True})
    assert enabled.status_code == 200
    upcoming = enabled.json()["next_fire_times"]
    assert len(upcoming) == 5 and all("T14:00:00+" in moment for moment in upcoming), upcoming
    listed = control.as_("viewer").get("/schedules").json()
    assert [s["id"] for s in listed] == ["thursday"]
    detail = control.as_("viewer").get("/schedules/thursday").json()
    assert detail["overlap"] == "forbid" and detail["misfire"] == "skip" and detail["recent_firings"] == []
    assert control.as_("viewer").delete("/schedules/thursday").status_code == 403
    assert operator.delete("/schedules/thursday").status_code == 204
    assert operator.get("/schedules/thursday").status_code == 404


def test_bad_schedules_are_422_and_change_nothing(control: Control) -> None:
    operator = control.as_("operator")
    cases = [
        ({"cron": "0 25 * * *", "experiments": ["weekly"]}, "hour"),
        ({"cron": "0 14 * * thu", "timezone": "Mars/Base", "experiments": ["weekly"]}, "Mars/Base"),
        ({"cron": "0 14 *", "experiments": ["weekly"]}, "5 fields"),
        ({"cron": "0 14 * * thu", "experiments": ["missing"]}, "no experiment 'missing'"),
        ({"cron": "0 14 * * thu", "experiments": []}, "body.experiments"),
        ({"cron": "0 14 * * thu", "experiments": ["weekly"], "overlap": "sometimes"}, "body.overlap"),
    ]
    for body, expected in cases:
        answer = operator.put("/schedules/bad", json=body)
        assert answer.status_code == 422 and expected in answer.json()["detail"], (body, answer.text)
    assert operator.get("/schedules/bad").status_code == 404


def test_no_token_secret_reaches_the_server_log(control: Control) -> None:
    for secret in control.tokens.values():
        httpx.get(f"{control.url}/runs", headers={"Authorization": f"Bearer {secret}"})
        httpx.get(f"{control.url}/runs?token={secret}")
    proc = control.process.proc
    assert proc is not None
    proc.terminate()  # this module's last test: read everything the server wrote
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    for secret in control.tokens.values():
        assert secret not in out + err

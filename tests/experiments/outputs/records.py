"""Run records built by hand, one per outcome, with real probe results and planted secrets."""

from __future__ import annotations

from chaos_service.experiments.record import CheckResult, FaultWindow, ProbeSummary, RunOutcome, RunRecord
from chaos_service.probes.records import Outcome, ProbeResult

T0 = 81_234.5  # a monotonic reading: results are scheduled from here

AUTH_SECRET = "s3cr3t-AUTH-value-42"
PG_PASSWORD = "pg-PASSWORD-9"
REDIS_PASSWORD = "redis-PASS-77"
WS_TOKEN = "ws-TOKEN-123"
API_KEY = "sk-test-ABCDEF123456"
BEARER = "bearer-TOKEN-xyz-789"
ROLLBACK_TOKEN = "rb-TOKEN-5550"
METRIC_PASSWORD = "metric-pw-31337"
SECRETS = (AUTH_SECRET, PG_PASSWORD, REDIS_PASSWORD, WS_TOKEN, API_KEY, BEARER, ROLLBACK_TOKEN, METRIC_PASSWORD)

PG_DSN = f"postgresql://chat:{PG_PASSWORD}@127.0.0.1:5432/chat"
CHAT_WS = f"ws://127.0.0.1:8000/ws?token={WS_TOKEN}&user=a"


def environment() -> dict[str, object]:
    return {
        "engine": {"url": "http://127.0.0.1:8474"},
        "auth": {"secret": AUTH_SECRET, "roles": ["viewer", "operator"]},
        "endpoints": {
            "postgres": PG_DSN,
            "redis": f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0",
            "chat_ws": CHAT_WS,
        },
        "llm": {"base_url": "http://127.0.0.1:9000/v1", "api_key": API_KEY, "max_tokens": 256},
        "headers": {"Authorization": f"Bearer {BEARER}"},
    }


def probe_results(
    name: str, every: float, duration: float, fail: tuple[float, float], deadline: float
) -> list[ProbeResult]:
    """Open-loop attempts every ``every`` s; those scheduled inside ``fail`` fail, alternately error and timeout."""
    results = []
    for index in range(int(duration / every)):
        at = index * every
        scheduled = T0 + at
        details = {"authorization": f"Bearer {BEARER}", "dsn": PG_DSN}
        if fail[0] <= at < fail[1]:
            if index % 2:
                outcome, error, latency = Outcome.ERROR, f"connection to {PG_DSN} refused", 0.002
            else:
                outcome, error, latency = Outcome.TIMEOUT, f"no answer from {CHAT_WS} by the deadline", deadline
        else:
            outcome, error, latency = Outcome.OK, None, 0.010 + 0.001 * (index % 7)
        results.append(
            ProbeResult(name, index, scheduled, scheduled + 0.0005, scheduled + latency, outcome, error, details)
        )
    return results


def summary(name: str, kind: str, results: list[ProbeResult], *, recovered: bool = True) -> ProbeSummary:
    ok = sum(r.ok for r in results)
    return ProbeSummary(
        name=name,
        type=kind,
        attempts=len(results),
        ok=ok,
        success_rate=ok / len(results) if results else None,
        latency={"p50": 0.012, "p95": 0.016, "p99": 2.0},
        detection=0.2 if ok < len(results) else None,
        recovery=0.4 if recovered and ok < len(results) else None,
        recovery_text=("0.40 s ± 0.10 s" if recovered else "> 30 s") if ok < len(results) else "no failure",
        resolution=0.1 if ok < len(results) else None,
        results=results,
    )


def checks(outcome: RunOutcome) -> list[CheckResult]:
    before_ok = outcome is not RunOutcome.PRECONDITION_FAILED
    after_ok = outcome is not RunOutcome.FAILED
    return [
        CheckResult("steady_state_before", "chat: success_rate >= 0.99", before_ok, "1.000" if before_ok else "0.412"),
        CheckResult("steady_state_before", "chat: p95_latency <= 10s", True, "0.016 s"),
        CheckResult(
            "steady_state_after",
            "chat: success_rate >= 0.99",
            after_ok,
            "1.000" if after_ok else "0.870",
            "" if after_ok else f"see {PG_DSN}",
        ),
        CheckResult(
            "slo",
            "recovery_time <= 60s",
            after_ok,
            "0.40 s" if after_ok else "> 30 s (censored)",
            "" if after_ok else "chat never recovered",
        ),
        CheckResult("slo", "cross_user_leaks == 0", True, "0"),
        CheckResult(
            "guardrail",
            "health: success_rate < 0.2 for 15s",
            outcome is not RunOutcome.ABORTED,
            "0.05" if outcome is RunOutcome.ABORTED else "1.00",
        ),
    ]


def record(
    outcome: RunOutcome = RunOutcome.PASSED, *, dry_run: bool = False, title: str = "Postgres partition during chats"
) -> RunRecord:
    """A 30 s run with two overlapping faults and two probes, ending in ``outcome``."""
    chat = probe_results("chat", 0.5, 30.0, (5.2, 15.4), deadline=5.0)
    health = probe_results("health", 0.1, 30.0, (5.0, 15.2), deadline=1.0)
    recovered = outcome is not RunOutcome.FAILED
    faults = [
        FaultWindow(
            "partition-postgres",
            "partition",
            "postgres",
            5.0,
            10.0,
            40.0,
            5.01,
            15.02,
            evidence=f"toxics applied on {PG_DSN}",
        ),
        FaultWindow("slow-redis", "latency", "redis", 8.0, 4.0, 34.0, 8.0, 12.01, evidence="latency toxic seen"),
        FaultWindow("kill-llm", "kill", "llm", 20.0, 1.0, 31.0, None, None, error=f"process gone; api_key={API_KEY}"),
    ]
    reasons = {
        RunOutcome.PASSED: "",
        RunOutcome.FAILED: "slo recovery_time <= 60s did not hold",
        RunOutcome.ABORTED: "guardrail health: success_rate < 0.2 for 15s tripped",
        RunOutcome.PRECONDITION_FAILED: "steady state did not hold before the first fault",
        RunOutcome.ERROR: f"could not reach {PG_DSN} (token={WS_TOKEN})",
    }
    return RunRecord(
        run_id="run-20250101-120000-abcd",
        title=title,
        path="experiments/postgres_partition.yaml",
        tags=["postgres", "partition"],
        started="2025-01-01T12:00:00.000000+00:00",
        ended="2025-01-01T12:00:30.000000+00:00",
        duration=30.0,
        outcome=outcome,
        reason=reasons[outcome],
        dry_run=dry_run,
        catches="no-retry-on-db-partition",
        faults=faults,
        probes=[summary("chat", "websocket_chat", chat, recovered=recovered), summary("health", "http", health)],
        checks=checks(outcome),
        metrics={
            "event_delivery": 0.998,
            "lost_events": 2,
            "nan_metric": float("nan"),
            "store": {"dsn": PG_DSN, "password": METRIC_PASSWORD},
        },
        environment=environment(),
        rollbacks=[
            {
                "name": "reset",
                "method": "POST",
                "url": f"http://127.0.0.1:8474/reset?token={ROLLBACK_TOKEN}",
                "status": 204,
                "headers": {"X-Api-Key": API_KEY},
            },
        ],
        t0=T0,
    )

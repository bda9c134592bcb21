"""Run a Chaos Toolkit experiment: Chaos Toolkit's flow, this service's verdict.

The flow is chaostoolkit-lib's: configuration and secrets, the steady-state hypothesis
before the method, the method's activities (``background`` ones beside the others, with
their pauses), the hypothesis during the method for the ``during-method-only`` and
``continuously`` strategies, the hypothesis after, then the rollbacks. Its Chaos Toolkit
status (``completed``, ``failed``, ``aborted``, ``interrupted``; ``deviated``) goes into a
journal in Chaos Toolkit's format.

The verdict differs where Chaos Toolkit's misleads (see `verdict`): a steady state that
does not hold before the method is ``precondition_failed``, not a pass; an action that failed
means nothing was tested (``error``); the after-method hypothesis failing is ``failed``;
deviations during the method are counted in the reason. Rollbacks are played in every
outcome unless the experiment's ``runtime`` says otherwise, and whatever the run changed on
the engine through ``chaostoxi`` is put back afterwards whatever the file's rollbacks did.
"""

from __future__ import annotations

import os
import platform
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chaos_service import __version__
from chaos_service.ctk.configuration import dynamic_keys, load_configuration, load_secrets, masked, substitute
from chaos_service.ctk.document import Activity, CtkExperiment
from chaos_service.ctk.providers import ActivityFailed, Providers
from chaos_service.ctk.tolerance import within_tolerance
from chaos_service.ctk.toxiproxy import ToxiproxyBridge
from chaos_service.experiments.record import RunOutcome

#: Each toxic created through ``chaostoxi`` lives at most this long, even if the run is killed.
DEFAULT_FAULT_TTL = 900.0

Notify = Callable[[str], None]


@dataclass
class CtkResult:
    journal: dict[str, Any]
    status: str
    deviated: bool
    outcome: RunOutcome
    reason: str
    restored: list[str] = field(default_factory=list)

    @property
    def ctk_exit_code(self) -> int:
        """Chaos Toolkit's own: 0 only when the status is ``completed`` and nothing deviated."""
        return 0 if self.status == "completed" and not self.deviated else 1


class CtkRunner:
    def __init__(
        self,
        experiment: CtkExperiment,
        engine_url: str,
        *,
        ctk_compat: bool = False,
        dry_run: bool = False,
        hypothesis_strategy: str | None = None,
        rollback_strategy: str | None = None,
        hypothesis_frequency: float = 1.0,
        fault_ttl: float = DEFAULT_FAULT_TTL,
        environ: Mapping[str, str] | None = None,
        notify: Notify | None = None,
    ) -> None:
        self.experiment = experiment
        self.dry_run = dry_run
        runtime = experiment.runtime
        self.hypothesis_strategy = (
            hypothesis_strategy or (runtime.get("hypothesis") or {}).get("strategy") or "default"
        ).replace("continously", "continuously")
        self.rollback_strategy = (
            rollback_strategy
            or (runtime.get("rollbacks") or {}).get("strategy")
            or ("default" if ctk_compat else "always")
        )
        self.frequency = hypothesis_frequency
        self.environ = os.environ if environ is None else environ
        self.notify: Notify = notify or (lambda message: None)
        self.bridge = ToxiproxyBridge(engine_url, ttl=fault_ttl)
        self.providers: Providers | None = None  # once the configuration and secrets are loaded
        self._stop = threading.Event()
        self._interrupted = ""
        self.status = "completed"
        self.deviated = False

    def interrupt(self, reason: str) -> None:
        """Stop at the next step (Ctrl-C, SIGTERM); the run ends ``interrupted``."""
        self._interrupted = self._interrupted or reason
        self._stop.set()

    def run(self) -> CtkResult:
        started, t0 = _now(), time.monotonic()
        states: dict[str, Any] = {"before": None, "after": None, "during": []}
        journal: dict[str, Any] = {
            "chaoslib-version": f"chaos-service {__version__}",
            "platform": platform.platform(),
            "node": platform.node(),
            "experiment": self.experiment.raw,
            "start": started,
            "status": None,
            "deviated": False,
            "steady_states": states,
            "run": [],
            "rollbacks": [],
        }
        secrets: dict[str, dict[str, Any]] = {}
        restored: list[str] = []
        if self.experiment.raw.get("controls"):
            self.notify("controls are not supported here: ignored")
        try:
            configuration = load_configuration(self.experiment.configuration, self.environ)
            secrets = load_secrets(self.experiment.secrets, self.environ)
            self.providers = Providers(configuration, secrets, self.bridge)
            for key in dynamic_keys(self.experiment.configuration):
                configuration[key] = self._dynamic(configuration[key])
            journal["experiment"] = {
                **self.experiment.raw,
                "title": substitute(self.experiment.title, configuration, secrets),
            }
            self._flow(states, journal)
        except Exception as exc:  # a bug or a broken environment: the run ends, the cleanup still happens
            self.status = "aborted"
            journal["aborted"] = f"{type(exc).__name__}: {exc}"
        finally:
            if self._interrupted:
                self.status = "interrupted"
            if self.providers is not None and self._play_rollbacks() and self.experiment.rollbacks:
                self.notify(f"rollbacks: {len(self.experiment.rollbacks)}")
                journal["rollbacks"] = [self._activity(a) for a in self.experiment.rollbacks]
            restored = self.bridge.restore()
        journal.update(status=self.status, deviated=self.deviated, end=_now(), duration=round(time.monotonic() - t0, 3))
        outcome, reason = verdict(journal, self._interrupted)
        journal["chaos-service"] = {
            "outcome": outcome.value,
            "reason": reason,
            "exit_code": outcome.exit_code,
            "restored": restored,
        }
        return CtkResult(masked(journal, secrets), self.status, self.deviated, outcome, reason, restored)

    def _flow(self, states: dict[str, Any], journal: dict[str, Any]) -> None:
        strategy, hypothesis = self.hypothesis_strategy, self.experiment.hypothesis
        if hypothesis is not None and strategy in ("default", "before-method-only", "continuously"):
            self.notify("steady state before the method")
            states["before"] = self._hypothesis()
            if not states["before"]["steady_state_met"]:
                return  # Chaos Toolkit skips the method; the rollbacks still follow their strategy
        during: threading.Thread | None = None
        method_done = threading.Event()
        if hypothesis is not None and strategy in ("during-method-only", "continuously"):
            during = threading.Thread(target=self._during, args=(states["during"], method_done), daemon=True)
            during.start()
        try:
            self.notify(f"method: {len(self.experiment.method)} activities")
            journal["run"] = self._method()
        finally:
            method_done.set()
            if during is not None:
                during.join()
        if (
            hypothesis is not None
            and strategy in ("default", "after-method-only", "continuously")
            and not self._stop.is_set()
        ):
            self.notify("steady state after the method")
            states["after"] = self._hypothesis()
            self.deviated = not states["after"]["steady_state_met"] and self.status == "completed"

    def _method(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        background: list[Future[dict[str, Any]]] = []
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="ctk-background") as pool:
            for activity in self.experiment.method:
                if self._stop.is_set():
                    break
                if activity.background:
                    background.append(pool.submit(self._activity, activity))
                else:
                    entries.append(self._activity(activity))
            entries += [future.result() for future in background]
        return entries

    def _hypothesis(self, *, during: bool = False) -> dict[str, Any]:
        """One pass over the steady-state probes; the first one that fails or misses stops it.

        A probe that cannot run before or after the method makes the run ``failed``, as in
        Chaos Toolkit; during the method it is a deviation like any other.
        """
        state: dict[str, Any] = {"steady_state_met": True, "probes": []}
        for probe in self.experiment.hypothesis or []:
            entry = self._activity(probe, tolerance=True)
            state["probes"].append(entry)
            if entry["status"] == "failed" and not during:
                self.status = "failed"
            if entry["status"] == "failed" or not entry.get("tolerance_met", True):
                state["steady_state_met"] = False
                break
        return state

    def _during(self, runs: list[dict[str, Any]], method_done: threading.Event) -> None:
        while not method_done.is_set() and not self._stop.is_set():
            runs.append(self._hypothesis(during=True))
            method_done.wait(self.frequency)

    @property
    def _loaded(self) -> Providers:
        """The providers; activities only run once the configuration and secrets are loaded."""
        assert self.providers is not None
        return self.providers

    def _activity(self, activity: Activity, *, tolerance: bool = False) -> dict[str, Any]:
        self._pause(activity.pauses.get("before"))
        entry: dict[str, Any] = {"activity": activity.raw, "status": "succeeded", "output": None, "start": _now()}
        began = time.monotonic()
        if self.dry_run and activity.type == "action":  # rollbacks too: they would undo what never happened
            entry["dry"] = True
        else:
            try:
                entry["output"] = self._loaded.run(activity.provider)
            except ActivityFailed as exc:
                entry.update(status="failed", exception=[str(exc)])
        if tolerance:
            entry["tolerance_met"] = entry["status"] == "succeeded" and self._within(activity, entry["output"])
        entry.update(end=_now(), duration=round(time.monotonic() - began, 3))
        self.notify(f"{activity.type} {activity.name}: {entry['status']}")
        self._pause(activity.pauses.get("after"))
        return entry

    def _within(self, probe: Activity, output: Any) -> bool:
        def run_probe(tolerance: Mapping[str, Any], value: Any) -> bool:
            try:
                return bool(self._loaded.run(tolerance["provider"], {"value": value}))
            except ActivityFailed:
                return False

        tolerance = substitute(probe.tolerance, self._loaded.configuration, self._loaded.secrets)
        try:
            return within_tolerance(tolerance, output, run_probe)
        except (ValueError, TypeError):
            return False

    def _dynamic(self, probe: Mapping[str, Any]) -> Any:
        output = self._loaded.run(probe["provider"])
        kind = probe["provider"].get("type")
        if kind == "process":
            if output["status"] != 0:
                raise ActivityFailed(f"dynamic configuration {probe.get('name')!r} exited {output['status']}")
            return str(output["stdout"]).strip()
        return output["body"] if kind == "http" else output

    def _pause(self, seconds: object) -> None:
        if isinstance(seconds, str):
            seconds = substitute(seconds, self._loaded.configuration, self._loaded.secrets)
        if isinstance(seconds, (int, float)) and seconds > 0:
            self._stop.wait(float(seconds))

    def _play_rollbacks(self) -> bool:
        strategy = self.rollback_strategy
        if strategy == "never":
            return False
        if strategy == "always":
            return True
        if strategy == "deviated":
            return self.deviated
        return self.status not in ("failed", "interrupted")


def verdict(journal: Mapping[str, Any], interrupted: str = "") -> tuple[RunOutcome, str]:
    """This service's verdict on a Chaos Toolkit run, and why."""
    states = journal["steady_states"]
    if interrupted:
        return RunOutcome.ABORTED, f"interrupted: {interrupted}"
    if journal["status"] == "aborted":
        return RunOutcome.ERROR, f"the run broke: {journal.get('aborted', 'unknown')}"
    before = states.get("before")
    if before is not None and not before["steady_state_met"]:
        return RunOutcome.PRECONDITION_FAILED, f"steady state did not hold before the method: {_missed(before)}"
    failed = [e for e in journal["run"] if e["status"] == "failed" and e["activity"].get("type") == "action"]
    if failed:
        name = failed[0]["activity"].get("name")
        return RunOutcome.ERROR, f"action {name!r} failed, so nothing was tested: {failed[0]['exception'][0]}"
    after = states.get("after")
    if after is not None and not after["steady_state_met"]:
        return RunOutcome.FAILED, f"steady state did not hold after the method: {_missed(after)}"
    broken = [e for e in journal["rollbacks"] if e["status"] == "failed"]
    if broken:
        name = broken[0]["activity"].get("name")
        return RunOutcome.ERROR, f"rollback {name!r} failed: {broken[0]['exception'][0]}"
    during = states.get("during") or []
    deviations = sum(1 for state in during if not state["steady_state_met"])
    note = f"; {deviations} of {len(during)} steady-state checks during the method deviated" if deviations else ""
    return RunOutcome.PASSED, f"steady state held{note}"


def _missed(state: Mapping[str, Any]) -> str:
    last = state["probes"][-1] if state["probes"] else None
    if last is None:
        return "no probe ran"
    name = last["activity"].get("name")
    if last["status"] == "failed":
        return f"probe {name!r} failed: {last.get('exception', ['?'])[0]}"
    output = repr(last["output"])
    output = output if len(output) <= 200 else output[:200] + "…"
    return f"probe {name!r} gave {output}, outside its tolerance {last['activity'].get('tolerance')!r}"


def _now() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat()

"""`chaos-service tour`: each fault as a real client sees it."""

import re
import subprocess
import sys


def _sections(output: str) -> dict[str, dict[str, str]]:
    """Result lines by part ("redis:", "llm:") and scenario title."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in output.splitlines():
        if re.match(r"^(redis|llm|the sandbox): ", line):
            current = sections.setdefault(line.split(":")[0], {})
        elif line.startswith("  ") and "  " in line.strip():
            title, _, result = line.strip().partition("  ")
            current[title.strip()] = result.strip()
    return sections


def test_the_tour_shows_each_fault_from_the_clients_side() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chaos_service", "tour"], capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr
    sections = _sections(result.stdout)
    redis, llm, chat = sections["redis"], sections["llm"], sections["the sandbox"]
    assert "200/200 ok" in redis["no faults"]
    latency = re.search(r"p50\s+([\d.]+) ms", redis["latency 100 ms ± 10 ms on replies"])
    assert latency is not None and 85 <= float(latency.group(1)) <= 200
    assert "0/3 ok" in redis["black hole (timeout 0) on requests"]
    assert "TimeoutError" in redis["black hole (timeout 0) on requests"]
    assert "0/3 ok" in redis["reset_peer on requests"]
    assert "200/200 ok" in redis["all toxics removed"]
    assert "12/12 tokens  finish stop" in llm["no faults"]
    assert "12/12 tokens" in llm["429 twice, Retry-After 0.3 s"]
    assert "3 attempts" in llm["429 twice, Retry-After 0.3 s"]
    assert re.search(r"finish -.*error", llm["stream cut cleanly after 5 events"]) is None
    assert "finish -" in llm["stream cut cleanly after 5 events"]
    assert "error: APIError" in llm["in-stream error after 5 events"]
    assert "error:" in llm["stream reset after 5 events"]
    assert chat["no faults"].startswith("5/5 runs completed") and "health ok" in chat["no faults"]
    assert chat["Redis down (proxy disabled)"].startswith("5/5 runs completed")
    assert "health degraded" in chat["Redis down (proxy disabled)"]
    assert chat["LLM 503 on each first attempt"].startswith("5/5 runs completed")
    assert "complete, in order, no duplicates" in chat["connection lost mid-run"]
    defect = chat["the same, defect no_retry_on_llm_503"]
    assert defect.startswith("0/5 runs completed") and "agent_error llm_status_503 x5" in defect
    assert "every fault removed" in result.stdout

import re
import subprocess
import sys


def test_the_demo_shows_each_fault_from_the_clients_side() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chaos_service", "demo"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    lines = {line.split("  ")[1].strip(): line for line in result.stdout.splitlines() if line.startswith("  ")}
    assert "200/200 ok" in lines["no faults"]
    latency = re.search(r"p50\s+([\d.]+) ms", lines["latency 100 ms ± 10 ms on replies"])
    assert latency is not None and 85 <= float(latency.group(1)) <= 200
    assert "0/3 ok" in lines["black hole (timeout 0) on requests"]
    assert "TimeoutError" in lines["black hole (timeout 0) on requests"]
    assert "0/3 ok" in lines["reset_peer on requests"]
    assert "200/200 ok" in lines["all toxics removed (POST /reset)"]
    assert "every fault removed" in result.stdout

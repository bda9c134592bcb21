"""``chaos-service engine`` as a real command: flags, config file, errors and signals (spec §3)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chaos_service.sandbox._process import free_port
from tests.support.engine import EchoServer, EngineProcess

RUN_TIMEOUT = 20.0
READY_LINE = re.compile(r"^chaos-service engine: API on http://127\.0\.0\.1:(\d+) \(Toxiproxy 2\.12\.0 compatible\)$")


def cli_env() -> dict[str, str]:
    """The caller's environment at the engine's default log level (what a user running it sees)."""
    env = {key: value for key, value in os.environ.items() if key != "LOG_LEVEL"}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m chaos_service ARGS`` to completion (it must exit on its own)."""
    return subprocess.run(
        [sys.executable, "-m", "chaos_service", *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env=cli_env(),
        check=False,
    )


def write_config(path: Path, proxies: list[dict[str, Any]] | str) -> Path:
    path.write_text(proxies if isinstance(proxies, str) else json.dumps(proxies))
    return path


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return True
    except ConnectionRefusedError:
        return False


def echo(port: int, payload: bytes = b"hello engine") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        received = b""
        while len(received) < len(payload) and (chunk := sock.recv(4096)):
            received += chunk
        return received


def assert_clean_usage_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 2, nothing on stdout, exactly one stderr line containing every fragment, no traceback."""
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def held_port() -> Iterator[int]:
    """A 127.0.0.1 port that another socket is listening on for the whole test."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


@pytest.fixture
def own_engine() -> Iterator[list[EngineProcess]]:
    """Engines a test starts; any still running at the end are stopped."""
    engines: list[EngineProcess] = []
    yield engines
    for process in engines:
        process.stop()


def start(engines: list[EngineProcess], *args: str, flags: list[str] | None = None) -> EngineProcess:
    process = EngineProcess(*args)
    if flags is not None:
        process.args = flags
    engines.append(process)
    return process.start()


# --- starting ---------------------------------------------------------------------------------------


def test_port_zero_prints_the_ready_line_and_the_api_answers(own_engine: list[EngineProcess]) -> None:
    process = start(own_engine)

    match = READY_LINE.match(process.ready_line)
    assert match, process.ready_line
    port = int(match.group(1))
    assert port != 0
    assert process.url == f"http://127.0.0.1:{port}"
    with process.client() as client:
        version = client.get("/version")
        assert version.status_code == 200
        assert version.content == b'{"version": "2.12.0"}\n'
        assert client.get("/proxies").json() == {}
    assert process.stop() == 0


def test_single_dash_flags_work(own_engine: list[EngineProcess], tmp_path: Path, echo_server: EchoServer) -> None:
    port = free_port()
    config = write_config(
        tmp_path / "proxies.json",
        [{"name": "single", "listen": f"127.0.0.1:{port}", "upstream": echo_server.address}],
    )

    process = start(
        own_engine, flags=["-host", "127.0.0.1", "-port", "0", "-seed", "7", "-config", str(config)]
    )

    assert READY_LINE.match(process.ready_line), process.ready_line
    with process.client() as client:
        assert client.get("/version").status_code == 200
        assert list(client.get("/proxies").json()) == ["single"]
    assert echo(port) == b"hello engine"


def test_single_dash_flags_with_equals_work(own_engine: list[EngineProcess]) -> None:
    """Go's flag package also takes ``-flag=value`` (spec §3)."""
    process = start(own_engine, flags=["-host=127.0.0.1", "-port=0", "-seed=3"])

    assert READY_LINE.match(process.ready_line), process.ready_line
    with process.client() as client:
        assert client.get("/version").status_code == 200


def test_config_file_creates_its_proxies_before_the_ready_line(
    own_engine: list[EngineProcess], tmp_path: Path, echo_server: EchoServer
) -> None:
    on_port, off_port = free_port(), free_port()
    config = write_config(
        tmp_path / "proxies.json",
        [
            {"name": "app_dev_echo_1", "listen": f"127.0.0.1:{on_port}", "upstream": echo_server.address},
            {
                "name": "app_dev_echo_2",
                "listen": f"127.0.0.1:{off_port}",
                "upstream": echo_server.address,
                "enabled": False,
            },
        ],
    )

    process = start(own_engine, "--config", str(config))

    # Nothing waits after the ready line: the enabled proxy must already be listening.
    assert echo(on_port) == b"hello engine"
    assert not accepts(off_port)
    with process.client() as client:
        proxies = client.get("/proxies").json()
    assert sorted(proxies) == ["app_dev_echo_1", "app_dev_echo_2"]
    assert proxies["app_dev_echo_1"]["listen"] == f"127.0.0.1:{on_port}"
    assert proxies["app_dev_echo_1"]["enabled"] is True
    assert proxies["app_dev_echo_2"]["enabled"] is False
    assert proxies["app_dev_echo_2"]["upstream"] == echo_server.address
    assert all(proxy["toxics"] == [] for proxy in proxies.values())


def test_config_file_with_localhost_listen_reports_ipv4(
    own_engine: list[EngineProcess], tmp_path: Path, echo_server: EchoServer
) -> None:
    port = free_port()
    config = write_config(
        tmp_path / "proxies.json",
        [{"name": "local", "listen": f"localhost:{port}", "upstream": echo_server.address}],
    )

    process = start(own_engine, "--config", str(config))

    with process.client() as client:
        assert client.get("/proxies/local").json()["listen"] == f"127.0.0.1:{port}"
    assert echo(port) == b"hello engine"


@pytest.mark.parametrize("flag", ["-version", "--version"])
def test_version_flag_prints_a_version_and_exits_zero(flag: str) -> None:
    result = run_cli("engine", flag)

    assert result.returncode == 0, result
    assert re.search(r"\d+\.\d+\.\d+", result.stdout), result.stdout
    assert "2.12.0" in result.stdout
    assert "Traceback" not in result.stderr


# --- bad input ------------------------------------------------------------------------------------


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"

    assert_clean_usage_error(run_cli("engine", "--port", "0", "--config", str(missing)), str(missing))


def test_config_with_invalid_json_exits_2(tmp_path: Path) -> None:
    config = write_config(tmp_path / "broken.json", '[{"name": "a", "upstream": ')

    assert_clean_usage_error(run_cli("engine", "--port", "0", "--config", str(config)), str(config))


def test_config_that_is_not_an_array_exits_2(tmp_path: Path) -> None:
    config = write_config(tmp_path / "object.json", '{"name": "a", "upstream": "127.0.0.1:1"}')

    assert_clean_usage_error(run_cli("engine", "--port", "0", "--config", str(config)), str(config))


def test_config_item_without_upstream_names_the_file_and_the_item(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "no_upstream.json",
        [
            {"name": "fine", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"},
            {"name": "broken", "listen": "127.0.0.1:0"},
        ],
    )

    line = assert_clean_usage_error(
        run_cli("engine", "--port", "0", "--config", str(config)), str(config), "at proxy 2"
    )
    assert "upstream" in line


def test_config_item_without_name_names_the_file_and_the_item(tmp_path: Path) -> None:
    config = write_config(tmp_path / "no_name.json", [{"listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"}])

    line = assert_clean_usage_error(
        run_cli("engine", "--port", "0", "--config", str(config)), str(config), "at proxy 1"
    )
    assert "name" in line


def test_config_proxy_on_a_port_in_use_exits_2(tmp_path: Path, held_port: int) -> None:
    config = write_config(
        tmp_path / "busy.json",
        [
            {"name": "free", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"},
            {"name": "busy", "listen": f"127.0.0.1:{held_port}", "upstream": "127.0.0.1:1"},
        ],
    )

    line = assert_clean_usage_error(run_cli("engine", "--port", "0", "--config", str(config)), str(held_port))
    assert "in use" in line.lower()


def test_api_port_out_of_range_exits_2() -> None:
    assert_clean_usage_error(run_cli("engine", "--port", "70000"), "70000")


def test_api_port_in_use_exits_2(held_port: int) -> None:
    line = assert_clean_usage_error(run_cli("engine", "--host", "127.0.0.1", "--port", str(held_port)), str(held_port))
    assert "in use" in line.lower()


def test_api_port_in_use_with_single_dash_flags_exits_2(held_port: int) -> None:
    line = assert_clean_usage_error(run_cli("engine", "-host", "127.0.0.1", "-port", str(held_port)), str(held_port))
    assert "in use" in line.lower()


def test_unknown_flag_exits_2_naming_it() -> None:
    result = run_cli("engine", "--port", "0", "--bogus-flag")

    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert any("--bogus-flag" in line for line in result.stderr.splitlines()), result.stderr


def test_non_numeric_port_exits_2() -> None:
    result = run_cli("engine", "--port", "eighty")

    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert "eighty" in result.stderr


def test_no_command_exits_2() -> None:
    result = run_cli()

    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert "engine" in result.stderr


def test_console_script_without_command_exits_2() -> None:
    script = Path(sys.executable).parent / "chaos-service"
    assert script.exists(), f"{script} is not installed"

    result = subprocess.run([str(script)], capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)

    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr


# --- stopping -------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_cleanly_and_closes_every_proxy(
    own_engine: list[EngineProcess], tmp_path: Path, echo_server: EchoServer, signum: signal.Signals
) -> None:
    config_port, disabled_port = free_port(), free_port()
    config = write_config(
        tmp_path / "proxies.json",
        [
            {"name": "from_config", "listen": f"127.0.0.1:{config_port}", "upstream": echo_server.address},
            {"name": "off", "listen": f"127.0.0.1:{disabled_port}", "upstream": echo_server.address, "enabled": False},
        ],
    )
    process = start(own_engine, "--config", str(config))
    with process.client() as client:
        created = client.post("/proxies", json={"name": "from_api", "upstream": echo_server.address})
        assert created.status_code == 201
        api_port = int(created.json()["listen"].rsplit(":", 1)[1])
        assert client.post("/proxies/off", json={"enabled": True}).status_code == 200
    assert echo(api_port) == b"hello engine"
    assert accepts(disabled_port)
    open_connection = socket.create_connection(("127.0.0.1", config_port), timeout=5)
    with open_connection:
        open_connection.sendall(b"live")
        assert open_connection.recv(4) == b"live"

        assert process.proc is not None
        process.proc.send_signal(signum)
        _, stderr = process.proc.communicate(timeout=15)

        assert process.proc.returncode == 0, stderr
        assert "Traceback" not in stderr
        try:
            closed = open_connection.recv(1) == b""
        except ConnectionResetError:
            closed = True
        assert closed
    for port in (config_port, disabled_port, api_port):
        assert not accepts(port)
    with pytest.raises(httpx.ConnectError), httpx.Client(timeout=5) as client:
        client.get(f"{process.url}/version")

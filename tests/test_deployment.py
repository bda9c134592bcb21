"""The Docker deployment's files agree with each other and with the code (no Docker needed).

docker-compose.chaos.yml, proxies/toxiproxy.json, proxies/engine.json,
proxies/environment.json, the Dockerfile and examples/ci/github-actions.yml describe one
stack. These tests parse them and fail, naming the file and the entry, when one drifts
from another: a proxy nobody serves, an upstream on the wrong port, a path that is not
mounted, a command the CLI would refuse, an experiment the stack cannot run.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import io
import json
import re
import shlex
from collections.abc import Iterator
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from chaos_service.cli.main import build_parser
from chaos_service.cli.sandbox_chat import SECRET_VARIABLE
from chaos_service.engine.server import load_config
from chaos_service.experiments.loader import parse_experiment
from chaos_service.experiments.record import RunOutcome
from chaos_service.sandbox.datastores import ExternalServer
from chaos_service.sandbox.environment import Environment, Proxy
from chaos_service.sandbox.stack import FIXED_PORTS, Ports, _wiring

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.chaos.yml"
TOXIPROXY_CONFIG = ROOT / "proxies" / "toxiproxy.json"
ENGINE_CONFIG = ROOT / "proxies" / "engine.json"
ENVIRONMENT = ROOT / "proxies" / "environment.json"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
WORKFLOW = ROOT / "examples" / "ci" / "github-actions.yml"
README = ROOT / "README.md"

SERVICES = {"postgres", "redis", "toxiproxy", "llm", "engine", "chat", "control"}
TOXIPROXY_IMAGE = "ghcr.io/shopify/toxiproxy:2.12.0"
#: Which service serves the proxies of which config file, and the protocols each may hold.
SERVING = {"toxiproxy": (TOXIPROXY_CONFIG, {"tcp"}), "engine": (ENGINE_CONFIG, {"http", "websocket"})}
#: The ports the upstream images listen on when their command does not say otherwise.
IMAGE_PORTS = {"postgres": 5432, "redis": 6379, "toxiproxy": 8474}
#: The container targets the environment names, each selecting one compose service.
CONTAINER_TARGETS = {"postgres", "redis", "llm", "chat"}
DOCKER_SOCKET = "/var/run/docker.sock"
#: `docker compose exec` options that take a value.
EXEC_VALUE_OPTIONS = {"-u", "--user", "-e", "--env", "-w", "--workdir", "--index"}
SHELL_OPERATORS = {"|", "||", "&&", ";", "&", ">", ">>", "<", "(", ")"}


# -- reading the files -------------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict), f"{COMPOSE.name}: not a mapping"
    return data


def services() -> dict[str, dict[str, Any]]:
    found = compose().get("services")
    assert isinstance(found, dict), f"{COMPOSE.name}: no services"
    return found


def service(name: str) -> dict[str, Any]:
    assert name in services(), f"{COMPOSE.name}: no service {name!r} (services: {sorted(services())})"
    return services()[name]


def command(name: str) -> list[str]:
    """The service's command as a list of strings (compose also takes one string)."""
    raw = service(name).get("command", [])
    argv = shlex.split(raw) if isinstance(raw, str) else raw
    assert all(isinstance(arg, str) for arg in argv), (
        f"{COMPOSE.name}: services.{name}.command: quote every argument as a string, got {argv!r}"
    )
    return list(argv)


def chaos_service_names() -> list[str]:
    return sorted(name for name in services() if command(name)[:1] == ["chaos-service"])


@cache
def proxy_configs() -> dict[str, list[dict[str, Any]]]:
    """The raw entries of each proxy config file, by the service that serves them."""
    loaded: dict[str, list[dict[str, Any]]] = {}
    for server, (path, _) in SERVING.items():
        entries = json.loads(path.read_text())
        assert isinstance(entries, list), f"{path.name}: not a JSON array of proxies"
        loaded[server] = entries
    return loaded


@cache
def environment() -> Environment:
    return Environment.load(ENVIRONMENT)


@cache
def workflow() -> dict[Any, Any]:
    data = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(data, dict), f"{WORKFLOW.name}: not a mapping"
    return data


def workflow_steps() -> list[dict[str, Any]]:
    jobs = workflow().get("jobs")
    assert isinstance(jobs, dict) and jobs, f"{WORKFLOW.name}: no jobs"
    return [step for job in jobs.values() for step in job.get("steps", [])]


def parse(argv: list[str], where: str) -> argparse.Namespace:
    """``chaos-service ARGV`` as the CLI parses it; a refusal fails the test with its message."""
    assert argv[:1] == ["chaos-service"], f"{where}: not a chaos-service command: {argv!r}"
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            return build_parser().parse_args(argv[1:])
    except SystemExit as exc:
        code = exc.code
    pytest.fail(f"{where}: `{shlex.join(argv)}` does not parse (exit {code}): {errors.getvalue().strip()}")


def split_address(address: str, where: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    assert sep and host and port.isdigit(), f"{where}: {address!r} is not HOST:PORT"
    return host, int(port)


def url_address(url: str, where: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname and parts.port, f"{where}: {url!r} names no host and port"
    return parts.hostname, parts.port


def option(argv: list[str], *names: str) -> str | None:
    """The value of a ``--name VALUE`` / ``-name=VALUE`` option in ``argv``."""
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
    return None


def mounts(name: str) -> list[tuple[str, str, str]]:
    """The service's volumes as (source, target, mode); a named volume's source has no slash."""
    found = []
    for entry in service(name).get("volumes", []):
        assert isinstance(entry, str), f"{COMPOSE.name}: services.{name}.volumes: use the short form, got {entry!r}"
        source, target, *mode = entry.split(":")
        found.append((source, target, mode[0] if mode else "rw"))
    return found


def repo_path_of(name: str, container_path: str) -> tuple[Path, str] | None:
    """The repository path a bind mount of the service shows at ``container_path``, and the mode."""
    wanted = PurePosixPath(container_path)
    for source, target, mode in mounts(name):
        if source.startswith("./") and (wanted == PurePosixPath(target) or PurePosixPath(target) in wanted.parents):
            return ROOT / source / wanted.relative_to(target), mode
    return None


def published(name: str) -> dict[int, tuple[str, int]]:
    """Container port -> (host address, host port) of the service's ``ports``."""
    found: dict[int, tuple[str, int]] = {}
    for entry in service(name).get("ports", []):
        assert isinstance(entry, str), f"{COMPOSE.name}: services.{name}.ports: quote {entry!r} as a string"
        parts = entry.split(":")
        assert len(parts) == 3, f"{COMPOSE.name}: services.{name}.ports: {entry!r} is not HOST_IP:HOST_PORT:PORT"
        found[int(parts[2])] = (parts[0], int(parts[1]))
    return found


def api_port(name: str) -> int:
    """The port the service's own server (not its proxies) listens on."""
    argv = command(name)
    if argv[:1] == ["chaos-service"]:
        port: int = parse(argv, f"{COMPOSE.name}: services.{name}.command").port
        return port
    given = option(argv, "-port", "--port", "-p")
    return int(given) if given else IMAGE_PORTS[name]


def listening_ports(name: str) -> set[int]:
    """Every port the service listens on: its server's, and its proxies' if it serves some."""
    ports = {api_port(name)}
    for entry in proxy_configs().get(name, []):
        ports.add(split_address(entry["listen"], f"{SERVING[name][0].name}: proxy {entry['name']!r}")[1])
    return ports


def dependencies(name: str) -> set[str]:
    """Every service ``name`` waits for, directly or through another."""
    seen: set[str] = set()
    todo = list(service(name).get("depends_on", {}))
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(service(current).get("depends_on", {}))
    return seen


def run_commands(text: str) -> Iterator[list[str]]:
    """The simple commands of a shell script (line continuations joined, operators split off)."""
    for line in text.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        current: list[str] = []
        for token in lexer:
            if token in SHELL_OPERATORS:
                if current:
                    yield current
                current = []
            else:
                current.append(token)
        if current:
            yield current


def workflow_chaos_commands() -> list[tuple[str, str | None, list[str]]]:
    """(step name, the compose service it execs in or None, argv from ``chaos-service``) of the workflow."""
    found = []
    for step in workflow_steps():
        for argv in run_commands(step.get("run", "")):
            if "chaos-service" not in argv:
                continue
            start = argv.index("chaos-service")
            found.append((str(step.get("name", "?")), exec_service(argv[:start]), argv[start:]))
    return found


def exec_service(prefix: list[str]) -> str | None:
    """The service of a ``docker compose … exec [OPTIONS] SERVICE`` prefix (None: not one)."""
    if "exec" not in prefix:
        return None
    rest = prefix[prefix.index("exec") + 1 :]
    while rest and rest[0].startswith("-"):
        rest = rest[2:] if rest[0] in EXEC_VALUE_OPTIONS else rest[1:]
    return rest[0] if rest else None


def the_run_step() -> tuple[str, str, argparse.Namespace]:
    """The workflow step that runs the experiments: its name, its service, its parsed arguments."""
    runs = [
        (step, svc, argv) for step, svc, argv in workflow_chaos_commands() if argv[1:2] == ["run"] and svc is not None
    ]
    assert len(runs) == 1, (
        f"{WORKFLOW.name}: expected one step running `docker compose … exec SERVICE chaos-service run …`, "
        f"found {len(runs)}"
    )
    step, svc, argv = runs[0]
    return step, svc, parse(argv, f"{WORKFLOW.name}: step {step!r}")


# -- the compose file --------------------------------------------------------------------------


def test_compose_file_is_a_named_project_with_the_stack_services() -> None:
    assert compose().get("name"), f"{COMPOSE.name}: needs a top-level `name:` (the compose project)"
    assert set(services()) == SERVICES, (
        f"{COMPOSE.name}: services are {sorted(services())}, expected {sorted(SERVICES)}"
    )


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_has_a_healthcheck(name: str) -> None:
    check = service(name).get("healthcheck")
    where = f"{COMPOSE.name}: services.{name}.healthcheck"
    assert isinstance(check, dict) and not check.get("disable"), f"{where}: missing"
    test = check.get("test")
    assert isinstance(test, list) and len(test) >= 2, f"{where}.test: must be a list like [CMD, ...], got {test!r}"
    assert test[0] in ("CMD", "CMD-SHELL"), f"{where}.test: must start with CMD or CMD-SHELL, got {test[0]!r}"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_depends_on_waits_for_healthy_services(name: str) -> None:
    depends = service(name).get("depends_on", {})
    where = f"{COMPOSE.name}: services.{name}.depends_on"
    assert isinstance(depends, dict), f"{where}: use the long form with `condition: service_healthy`, got {depends!r}"
    for other, entry in depends.items():
        assert other in services(), f"{where}: no service {other!r}"
        condition = entry.get("condition") if isinstance(entry, dict) else None
        assert condition == "service_healthy", f"{where}.{other}: condition is {condition!r}, not service_healthy"
    assert name not in dependencies(name), f"{where}: {name} waits for itself (a cycle)"


def test_each_service_starts_after_every_service_its_command_and_environment_reach() -> None:
    reached: dict[str, set[str]] = {}
    for name in SERVICES:
        for arg in command(name):
            if "://" in arg and (host := urlsplit(arg).hostname) in SERVICES:
                reached.setdefault(name, set()).add(host)
    env = environment()
    urls = [env.engine, env.toxiproxy, *env.endpoints.values(), *env.direct.values()]
    reached["control"] = {host for url in urls if (host := urlsplit(url).hostname) in SERVICES}
    assert reached.get("chat"), f"{COMPOSE.name}: services.chat.command reaches no service"
    for name, hosts in sorted(reached.items()):
        missing = hosts - dependencies(name) - {name}
        assert not missing, (
            f"{COMPOSE.name}: services.{name} reaches {sorted(missing)} but does not wait for them (depends_on)"
        )


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_images_are_pinned(name: str) -> None:
    spec = service(name)
    image = spec.get("image")
    where = f"{COMPOSE.name}: services.{name}.image"
    assert image or spec.get("build"), f"{COMPOSE.name}: services.{name} has neither image nor build"
    if spec.get("build"):
        return  # our own image, built from the Dockerfile (checked below)
    assert isinstance(image, str), f"{where}: missing"
    tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
    assert tag and tag != "latest", f"{where}: {image!r} is not pinned to a version tag"
    if name == "toxiproxy":
        assert image == TOXIPROXY_IMAGE, f"{where}: {image!r}, expected exactly {TOXIPROXY_IMAGE}"


def test_dockerfile_base_image_is_pinned() -> None:
    bases = re.findall(r"^FROM\s+(\S+)", DOCKERFILE.read_text(), re.MULTILINE)
    assert bases, f"{DOCKERFILE.name}: no FROM"
    for base in bases:
        assert ":" in base and not base.endswith(":latest"), f"{DOCKERFILE.name}: FROM {base} is not pinned to a tag"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_published_ports_are_on_loopback_only(name: str) -> None:
    for port, (address, host_port) in published(name).items():
        assert address == "127.0.0.1", (
            f"{COMPOSE.name}: services.{name}.ports: {host_port}:{port} is published on {address!r}, not 127.0.0.1"
        )


def test_host_ports_are_unique() -> None:
    seen: dict[int, str] = {}
    for name in sorted(SERVICES):
        for port, (_, host_port) in published(name).items():
            assert host_port not in seen, (
                f"{COMPOSE.name}: host port {host_port} is published by both {seen[host_port]} and {name} ({port})"
            )
            seen[host_port] = name


@pytest.mark.parametrize("name", ["toxiproxy", "engine", "control"])
def test_apis_are_published(name: str) -> None:
    port = api_port(name)
    assert port in published(name), f"{COMPOSE.name}: services.{name} does not publish its API port {port}"


# -- chaos-service commands --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["llm", "engine", "chat", "control"])
def test_our_services_run_a_chaos_service_command_of_our_image(name: str) -> None:
    assert name in chaos_service_names(), f"{COMPOSE.name}: services.{name}.command is not `chaos-service …`"
    args = parse(command(name), f"{COMPOSE.name}: services.{name}.command")
    expected = {"llm": "llm-stub", "engine": "engine", "chat": "sandbox-chat", "control": "serve"}[name]
    assert args.command == expected, f"{COMPOSE.name}: services.{name} runs `{args.command}`, not `{expected}`"
    assert args.host == "0.0.0.0", f"{COMPOSE.name}: services.{name} listens on {args.host}; others cannot reach it"
    assert service(name).get("build"), f"{COMPOSE.name}: services.{name} is not built from the Dockerfile"


def test_every_workflow_chaos_service_command_parses() -> None:
    found = workflow_chaos_commands()
    assert found, f"{WORKFLOW.name}: runs no chaos-service command"
    for step, _, argv in found:
        parse(argv, f"{WORKFLOW.name}: step {step!r}")


@pytest.mark.parametrize("name", ["llm", "engine", "chat", "control"])
def test_our_healthchecks_ask_the_service_on_its_own_port(name: str) -> None:
    test = service(name)["healthcheck"]["test"]
    where = f"{COMPOSE.name}: services.{name}.healthcheck.test"
    assert test[:3] == ["CMD", "python", "-c"], f"{where}: expected [CMD, python, -c, …], got {test[:3]!r}"
    urls = re.findall(r"https?://[^'\"\s]+", test[3])
    assert len(urls) == 1 and "urlopen" in test[3], f"{where}: expected one urllib urlopen of a URL, got {test[3]!r}"
    host, port = url_address(urls[0], where)
    assert host in ("127.0.0.1", "localhost"), f"{where}: asks {host}, not the container itself"
    assert port == api_port(name), f"{where}: asks port {port}, but the service listens on {api_port(name)}"


def test_toxiproxy_listens_on_every_interface_and_loads_its_config() -> None:
    argv = command("toxiproxy")
    where = f"{COMPOSE.name}: services.toxiproxy.command"
    # The image's CMD is -host=0.0.0.0; a command that replaces it without -host serves on localhost only.
    assert option(argv, "-host", "--host") == "0.0.0.0", f"{where}: needs -host=0.0.0.0, got {argv!r}"
    assert option(argv, "-port", "--port") == "8474", f"{where}: needs -port=8474, got {argv!r}"
    assert option(argv, "-config", "--config") == "/proxies/toxiproxy.json", f"{where}: got {argv!r}"


def test_toxiproxy_healthcheck_inspects_the_last_configured_proxy() -> None:
    test = service("toxiproxy")["healthcheck"]["test"]
    where = f"{COMPOSE.name}: services.toxiproxy.healthcheck.test"
    assert test[:2] == ["CMD", "/toxiproxy-cli"], f"{where}: the image has no shell; use [CMD, /toxiproxy-cli, …]"
    host = option(test, "--host", "-h")
    assert host and url_address(host, where)[1] == api_port("toxiproxy"), f"{where}: --host {host!r} is not the API"
    last = proxy_configs()["toxiproxy"][-1]["name"]
    assert test[-2:] == ["inspect", last], (
        f"{where}: should end `inspect {last}` (the last proxy of {TOXIPROXY_CONFIG.name}: Toxiproxy only logs "
        f"a config it could not load, and creates its proxies in order), got {test!r}"
    )


# -- paths inside containers -------------------------------------------------------------------


def container_config_paths() -> list[tuple[str, str, str]]:
    """(service, container path, where) of every config file a command reads."""
    found = []
    for name in SERVICES:
        argv = command(name)
        where = f"{COMPOSE.name}: services.{name}.command"
        if argv[:1] == ["chaos-service"]:
            args = parse(argv, where)
            for attribute in ("config", "environment", "env"):
                if getattr(args, attribute, None) is not None:
                    found.append((name, str(getattr(args, attribute)), where))
        elif (given := option(argv, "-config", "--config")) is not None:
            found.append((name, given, where))
    step, svc, args = the_run_step()
    assert args.env is not None, f"{WORKFLOW.name}: step {step!r} gives no --env"
    found.append((svc, str(args.env), f"{WORKFLOW.name}: step {step!r}"))
    return sorted(found)


def test_every_config_path_is_a_mounted_repository_file() -> None:
    paths = container_config_paths()
    assert {name for name, _, _ in paths} >= {"toxiproxy", "engine", "control"}
    for name, path, where in paths:
        mounted = repo_path_of(name, path)
        assert mounted is not None, f"{where}: {path} is not in a bind mount of services.{name}.volumes"
        file, mode = mounted
        assert file.is_file(), f"{where}: {path} is mounted from {file.relative_to(ROOT)}, which does not exist"
        assert mode == "ro", f"{COMPOSE.name}: services.{name} mounts {path} writable; mount it :ro"


def test_control_plane_store_is_on_a_volume_and_shared_with_exec() -> None:
    args = parse(command("control"), f"{COMPOSE.name}: services.control.command")
    store = PurePosixPath(args.store)
    volumes = {target: source for source, target, _ in mounts("control") if "/" not in source}
    assert str(store.parent) in volumes, f"{COMPOSE.name}: services.control --store {store}: not on a named volume"
    assert volumes[str(store.parent)] in compose().get("volumes", {}), (
        f"{COMPOSE.name}: volume {volumes[str(store.parent)]!r} is not declared under top-level volumes"
    )
    assert service("control").get("environment", {}).get("CHAOS_STORE") == args.store, (
        f"{COMPOSE.name}: services.control.environment.CHAOS_STORE should equal --store {args.store} "
        "(so that `exec control chaos-service token create` finds the same store)"
    )


def test_control_plane_loads_experiments_the_image_contains() -> None:
    args = parse(command("control"), f"{COMPOSE.name}: services.control.command")
    copied = dockerfile_copies()
    for path in args.load:
        assert str(path).rstrip("/") in copied.values(), (
            f"{COMPOSE.name}: services.control --load {path}: the Dockerfile copies no such directory "
            f"(it copies {sorted(copied.values())})"
        )


# -- the proxy configs -------------------------------------------------------------------------


@pytest.mark.parametrize("server", sorted(SERVING))
def test_proxy_config_holds_only_its_servers_protocols(server: str) -> None:
    path, protocols = SERVING[server]
    specs = load_config(path)  # the engine reads Toxiproxy's format; it raises for a bad file
    assert specs, f"{path.name}: no proxies"
    for spec in specs:
        assert spec.protocol in protocols, (
            f"{path.name}: proxy {spec.name!r} is {spec.protocol}, but {server} serves only {sorted(protocols)}"
        )
    if server == "toxiproxy":
        for entry in proxy_configs()[server]:
            assert "protocol" not in entry, f"{path.name}: proxy {entry['name']!r}: Toxiproxy has no `protocol` field"


def test_proxy_names_and_listen_ports_are_unique_and_published() -> None:
    names: dict[str, str] = {}
    ports: dict[int, str] = {}
    for server, entries in sorted(proxy_configs().items()):
        path = SERVING[server][0].name
        for entry in entries:
            name = entry["name"]
            assert name not in names, f"{path}: proxy {name!r} is also defined in {names[name]}"
            names[name] = path
            host, port = split_address(entry["listen"], f"{path}: proxy {name!r}")
            assert host == "0.0.0.0", f"{path}: proxy {name!r} listens on {host}; other containers cannot reach it"
            assert port not in ports, f"{path}: proxy {name!r} listens on {port}, as does {ports[port]}"
            ports[port] = f"{path}: proxy {name!r}"
            assert port != api_port(server), f"{path}: proxy {name!r} listens on {server}'s API port {port}"
            assert published(server).get(port) == ("127.0.0.1", port), (
                f"{COMPOSE.name}: services.{server}.ports should publish 127.0.0.1:{port}:{port} "
                f"for proxy {name!r} of {path}"
            )
    assert set(names) == {"postgres", "redis", "llm", "chat_ws"}, f"proxies defined: {sorted(names)}"


def test_every_upstream_is_a_service_port() -> None:
    for server, entries in sorted(proxy_configs().items()):
        path = SERVING[server][0].name
        for entry in entries:
            host, port = split_address(entry["upstream"], f"{path}: proxy {entry['name']!r} upstream")
            assert host in SERVICES, f"{path}: proxy {entry['name']!r}: upstream host {host!r} is no compose service"
            assert port in listening_ports(host), (
                f"{path}: proxy {entry['name']!r}: upstream {host}:{port}, but services.{host} listens on "
                f"{sorted(listening_ports(host))}"
            )


# -- the environment file ----------------------------------------------------------------------


def test_environment_proxies_are_the_union_of_both_configs() -> None:
    expected = {
        entry["name"]: Proxy(
            protocol=entry.get("protocol", "tcp"),
            listen=f"{server}:{split_address(entry['listen'], entry['name'])[1]}",
            upstream=entry["upstream"],
        )
        for server, entries in proxy_configs().items()
        for entry in entries
    }
    actual = environment().proxies
    assert set(actual) == set(expected), (
        f"{ENVIRONMENT.name}: proxies {sorted(actual)}; the config files define {sorted(expected)}"
    )
    for name, proxy in sorted(expected.items()):
        assert actual[name] == proxy, f"{ENVIRONMENT.name}: proxies.{name} is {actual[name]}, the config says {proxy}"


@pytest.mark.parametrize("server", sorted(SERVING))
def test_environment_names_each_data_plane_api(server: str) -> None:
    url = {"engine": environment().engine, "toxiproxy": environment().toxiproxy}[server]
    where = f"{ENVIRONMENT.name}: {server}"
    assert url, f"{where}: missing"
    assert url_address(url, where) == (server, api_port(server)), (
        f"{where}: {url!r}, but services.{server} serves its API on {server}:{api_port(server)}"
    )


def sandbox_wiring() -> tuple[dict[str, Proxy], dict[str, str], dict[str, str]]:
    """What ``sandbox up`` writes, for fixed ports and external datastores."""
    ports = Ports(**{name: port for name, (port, _) in FIXED_PORTS.items()})
    postgres = ExternalServer.from_url("postgresql://postgres@10.0.0.1:5432/postgres", 5432)
    redis = ExternalServer.from_url("redis://10.0.0.2:6379/0", 6379)
    return _wiring(ports, postgres, redis, "10.0.0.3:8081")


def roles(proxies: dict[str, Proxy]) -> dict[str, tuple[str, str]]:
    """HOST:PORT -> ("listen" or "upstream", proxy name)."""
    found: dict[str, tuple[str, str]] = {}
    for name, proxy in proxies.items():
        found[proxy.listen] = ("listen", name)
        found[proxy.upstream] = ("upstream", name)
    return found


@pytest.mark.parametrize("section", ["endpoints", "direct"])
def test_environment_addresses_mirror_the_sandbox(section: str) -> None:
    """Each address goes through (or around) the same proxy as the sandbox's, with the same URL form."""
    sandbox_proxies, *sandbox_sections = sandbox_wiring()
    sandbox = dict(zip(["endpoints", "direct"], sandbox_sections, strict=True))[section]
    ours: dict[str, str] = getattr(environment(), section)
    assert set(ours) == set(sandbox), (
        f"{ENVIRONMENT.name}: {section} are {sorted(ours)}, the sandbox's {sorted(sandbox)}"
    )
    sandbox_roles, our_roles = roles(sandbox_proxies), roles(environment().proxies)
    for key, url in sorted(sandbox.items()):
        theirs, mine = urlsplit(url), urlsplit(ours[key])
        where = f"{ENVIRONMENT.name}: {section}.{key} {ours[key]!r}"
        role = sandbox_roles[theirs.netloc.rpartition("@")[2]]
        assert our_roles.get(mine.netloc.rpartition("@")[2]) == role, (
            f"{where}: should be the {role[0]} address of proxy {role[1]!r} "
            f"({getattr(environment().proxies[role[1]], role[0])}), as in the sandbox's {url!r}"
        )
        assert (mine.scheme, mine.path, mine.username) == (theirs.scheme, theirs.path, theirs.username), (
            f"{where}: the sandbox's is {url!r}: keep its scheme, user and path"
        )


def test_environment_container_targets_select_compose_services() -> None:
    containers = environment().containers
    assert set(containers) == CONTAINER_TARGETS, (
        f"{ENVIRONMENT.name}: containers are {sorted(containers)}, expected {sorted(CONTAINER_TARGETS)}"
    )
    project = compose().get("name")
    for target, container in sorted(containers.items()):
        where = f"{ENVIRONMENT.name}: containers.{target}"
        # Compose names a service's first container PROJECT-SERVICE-1; a label would also match
        # a service of the same name in another project on the same Docker host.
        expected = f"{project}-{target}-1"
        assert container.name == expected, f"{where}: select by exact name {expected!r}, got {container.describe()}"
        assert target in SERVICES, f"{where}: {target!r} is no service of {COMPOSE.name}"
    assert environment().processes == {}, f"{ENVIRONMENT.name}: processes: no local processes in this stack"


def test_control_plane_reaches_docker_through_a_read_only_socket_mount() -> None:
    url = environment().docker or f"unix://{DOCKER_SOCKET}"
    assert url.startswith("unix://"), f"{ENVIRONMENT.name}: docker {url!r} is not the mounted socket"
    socket_path = url.removeprefix("unix://")
    sockets = [(source, mode) for source, target, mode in mounts("control") if target == socket_path]
    assert sockets, f"{COMPOSE.name}: services.control does not mount {socket_path} ({ENVIRONMENT.name}: docker)"
    assert sockets[0] == (DOCKER_SOCKET, "ro"), f"{COMPOSE.name}: services.control mounts {sockets[0]}, not :ro"


def test_chat_service_reaches_its_dependencies_through_the_proxies() -> None:
    args = parse(command("chat"), f"{COMPOSE.name}: services.chat.command")
    env = environment()
    for flag, endpoint in (("postgres_url", "postgres"), ("redis_url", "redis"), ("llm_url", "llm")):
        assert getattr(args, flag) == env.endpoints[endpoint], (
            f"{COMPOSE.name}: services.chat --{flag.replace('_', '-')} {getattr(args, flag)!r}, but "
            f"{ENVIRONMENT.name}: endpoints.{endpoint} is {env.endpoints[endpoint]!r}"
        )
    host, port = url_address(env.endpoints["health"], f"{ENVIRONMENT.name}: endpoints.health")
    assert (host, port) == ("chat", args.port), f"{ENVIRONMENT.name}: endpoints.health is not services.chat's port"


def test_chat_jwt_secret_is_the_environments() -> None:
    assert "--jwt-secret" not in command("chat"), f"{COMPOSE.name}: services.chat: pass the secret in the environment"
    secret = service("chat").get("environment", {}).get(SECRET_VARIABLE)
    assert secret, f"{COMPOSE.name}: services.chat.environment.{SECRET_VARIABLE} is missing"
    assert secret == environment().auth.secret, (
        f"{COMPOSE.name}: services.chat.environment.{SECRET_VARIABLE} differs from {ENVIRONMENT.name}: auth.secret"
    )


@pytest.mark.parametrize("path", sorted((ROOT / "experiments").glob("*.yaml")), ids=lambda p: p.name)
def test_builtin_experiment_validates_against_the_stack(path: Path) -> None:
    parse_experiment(path.read_text(), f"experiments/{path.name}", environment(), variables={})


@pytest.mark.parametrize("target", sorted(CONTAINER_TARGETS))
def test_container_faults_validate_against_the_stack(target: str) -> None:
    experiment = f"""
title: stop {target}
description: a container fault on the compose service {target}
probes:
  health: {{type: http, endpoint: health, every: 1s, deadline: 2s}}
method:
  - {{name: stop-{target}, at: 0s, fault: stop, process: {target}, duration: 2s}}
slo:
  success_rate: ">= 0.5"
"""
    plan = parse_experiment(experiment, f"stop-{target}.yaml", environment(), variables={})
    assert [fault.target for fault in plan.method] == [target]


# -- the Dockerfile ----------------------------------------------------------------------------


def dockerfile_copies() -> dict[str, str]:
    """Source -> destination (relative to WORKDIR, without ./) of the Dockerfile's COPY lines."""
    copies: dict[str, str] = {}
    for line in DOCKERFILE.read_text().splitlines():
        words = line.split()
        if words[:1] != ["COPY"] or any(word.startswith("--from") for word in words):
            continue
        *sources, destination = [word for word in words[1:] if not word.startswith("--")]
        for source in sources:
            target = destination if not destination.endswith("/") else destination + Path(source).name
            copies[source] = target.removeprefix("./").rstrip("/") or source
    return copies


def dockerignore_patterns() -> list[str]:
    if not DOCKERIGNORE.exists():
        return []
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_dockerfile_copies_existing_files_the_build_context_keeps() -> None:
    copies = dockerfile_copies()
    assert {"chaos_service", "experiments", "pyproject.toml"} <= set(copies), (
        f"{DOCKERFILE.name}: must COPY the package, pyproject.toml and experiments/, copies {sorted(copies)}"
    )
    for source in copies:
        assert (ROOT / source).exists(), f"{DOCKERFILE.name}: COPY {source}: no such file in the repository"
        for pattern in dockerignore_patterns():
            assert not fnmatch.fnmatch(source.rstrip("/"), pattern.rstrip("/")), (
                f"{DOCKERFILE.name}: COPY {source}, but {DOCKERIGNORE.name} excludes it ({pattern})"
            )


def test_dockerfile_runs_as_an_unprivileged_user() -> None:
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE.read_text(), re.MULTILINE)
    assert users and users[-1] not in ("root", "0"), f"{DOCKERFILE.name}: the last USER is {users[-1:]}, not a user"


# -- the CI workflow ---------------------------------------------------------------------------


def test_workflow_starts_the_stack_and_waits_for_it() -> None:
    ups = [argv for step in workflow_steps() for argv in run_commands(step.get("run", "")) if "up" in argv]
    assert ups, f"{WORKFLOW.name}: no step runs `docker compose … up`"
    for argv in ups:
        assert argv[:2] == ["docker", "compose"], f"{WORKFLOW.name}: {shlex.join(argv)}"
        assert option(argv, "-f", "--file") == COMPOSE.name, (
            f"{WORKFLOW.name}: `{shlex.join(argv)}` needs -f {COMPOSE.name}"
        )
        assert {"-d", "--wait", "--build"} <= set(argv), (
            f"{WORKFLOW.name}: `{shlex.join(argv)}` needs -d --wait --build"
        )


def test_workflow_runs_the_builtin_suite_in_a_stack_service() -> None:
    step, svc, args = the_run_step()
    where = f"{WORKFLOW.name}: step {step!r}"
    assert svc in SERVICES, f"{where}: execs in {svc!r}, which is no service of {COMPOSE.name}"
    assert [str(f).rstrip("/") for f in args.files] == ["experiments"], f"{where}: runs {args.files}, not experiments/"
    assert "experiments" in dockerfile_copies().values(), f"{where}: the image has no experiments/"
    assert args.junit is not None and args.html is not None, f"{where}: needs --junit and --html"


def test_workflow_uploads_the_reports_the_run_step_writes() -> None:
    step, svc, args = the_run_step()
    written = []
    for output in (args.junit, args.html):
        mounted = repo_path_of(svc, str(output))
        assert mounted is not None, (
            f"{WORKFLOW.name}: step {step!r} writes {output}, which is in no bind mount of services.{svc}"
        )
        assert mounted[1] != "ro", f"{COMPOSE.name}: services.{svc} mounts {output} read-only"
        written.append(mounted[0].relative_to(ROOT).as_posix())
    uploads = [s for s in workflow_steps() if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    uploaded = [path for s in uploads for path in str(s.get("with", {}).get("path", "")).split()]
    assert sorted(uploaded) == sorted(written), f"{WORKFLOW.name}: uploads {uploaded}, the run writes {written}"
    for upload in uploads:
        assert upload.get("if") == "always()", f"{WORKFLOW.name}: step {upload.get('name')!r} needs `if: always()`"
    host_dirs = {str(PurePosixPath(path).parent) for path in written}
    scripts = " ".join(str(s.get("run", "")) for s in workflow_steps())
    for directory in host_dirs:
        assert f"mkdir -p {directory}" in scripts, (
            f"{WORKFLOW.name}: create {directory}/ before `up`, or Docker creates it owned by root"
        )


def test_workflow_tears_the_stack_down_always() -> None:
    downs = [s for s in workflow_steps() for argv in run_commands(s.get("run", "")) if "down" in argv]
    assert downs, f"{WORKFLOW.name}: no step runs `docker compose … down`"
    for step in downs:
        assert step.get("if") == "always()", f"{WORKFLOW.name}: step {step.get('name')!r} needs `if: always()`"
        assert f"-f {COMPOSE.name}" in step["run"], (
            f"{WORKFLOW.name}: step {step.get('name')!r} needs -f {COMPOSE.name}"
        )


def test_workflow_does_not_swallow_the_run_steps_exit_code() -> None:
    for job_name, job in workflow()["jobs"].items():
        assert "continue-on-error" not in job, f"{WORKFLOW.name}: jobs.{job_name} has continue-on-error"
        for step in job.get("steps", []):
            where = f"{WORKFLOW.name}: step {step.get('name')!r}"
            assert "continue-on-error" not in step, f"{where} has continue-on-error"
            script = str(step.get("run", ""))
            for swallow in ("|| true", "|| :", "set +e", "|| exit 0"):
                assert swallow not in script, f"{where}: `{swallow}` hides a failing command"
    step, _, _ = the_run_step()
    run_step = next(s for s in workflow_steps() if s.get("name") == step)
    assert "|" not in run_step["run"], f"{WORKFLOW.name}: step {step!r} pipes the run; its exit code is lost"


# -- the README --------------------------------------------------------------------------------


def test_readme_ci_section_states_the_run_exit_codes() -> None:
    text = README.read_text()
    match = re.search(r"^## CI stage\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert match, f"{README.name}: no `## CI stage` section"
    section = match.group(1)
    assert "examples/ci/github-actions.yml" in section, f"{README.name}: the CI stage section names no workflow"
    for outcome in RunOutcome:
        phrase = f"{outcome.exit_code} {outcome.value.replace('_', ' ')}"
        assert phrase in section, f"{README.name}: the CI stage section should say `{phrase}` (from RunOutcome)"

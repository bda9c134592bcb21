"""Every shipped proxy definition is valid, and the compose file refers to real ones."""

import re
from pathlib import Path

import pytest

from chaos_service.engine.server import load_config

ROOT = Path(__file__).resolve().parent.parent


PROXY_FILES = sorted(p for p in (ROOT / "proxies").glob("*.json") if p.name != "environment.json")


@pytest.mark.parametrize("path", PROXY_FILES, ids=lambda p: p.name)
def test_proxy_definitions_load(path: Path) -> None:
    specs = load_config(path)
    assert specs
    assert len({spec.name for spec in specs}) == len(specs)


def test_compose_file_uses_shipped_proxy_definitions() -> None:
    compose = (ROOT / "docker-compose.chaos.yml").read_text()
    configs = re.findall(r"/proxies/([\w.-]+\.json)", compose)
    assert configs
    for name in configs:
        assert (ROOT / "proxies" / name).is_file(), name

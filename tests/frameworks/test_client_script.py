"""The browser client ``sessionward.js``: served by every integration, shipped as package
data, and valid JavaScript."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from support.services import skip_or_fail

from frameworks.clients import IN_PROCESS, open_client
from sessionward import Config
from sessionward.browser import (
    CLIENT_SCRIPT_CACHE_CONTROL,
    CLIENT_SCRIPT_CONTENT_TYPE,
    CLIENT_SCRIPT_PATH,
    client_script,
)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "src" / "sessionward" / "static" / "sessionward.js"


@pytest.mark.parametrize("framework", IN_PROCESS)
def test_every_integration_serves_the_client(framework: str, tmp_path: Path) -> None:
    config = Config(store=f"sqlite:///{tmp_path}/s.db", cookie_secure=False, access_token_algorithm="HS256")
    with open_client(framework, config) as client:
        response = client.request("GET", CLIENT_SCRIPT_PATH)
    assert response.status == 200
    assert response.header("content-type") == CLIENT_SCRIPT_CONTENT_TYPE
    assert response.header("cache-control") == CLIENT_SCRIPT_CACHE_CONTROL
    assert response.header("x-content-type-options") == "nosniff"
    assert response.header("access-control-allow-origin") == "*"  # importable from another origin
    assert response.body == client_script() == SCRIPT.read_bytes()
    assert not response.header_values("set-cookie")


@pytest.mark.parametrize("framework", IN_PROCESS)
def test_the_client_route_answers_only_reads(framework: str, tmp_path: Path) -> None:
    config = Config(store=f"sqlite:///{tmp_path}/s.db", cookie_secure=False, access_token_algorithm="HS256")
    with open_client(framework, config) as client:
        assert client.request("POST", CLIENT_SCRIPT_PATH).status == 405
        head = client.request("HEAD", CLIENT_SCRIPT_PATH)
    assert head.status == 200
    assert head.header("content-type") == CLIENT_SCRIPT_CONTENT_TYPE


def test_the_script_ships_as_package_data() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "static/*.js" in pyproject["tool"]["setuptools"]["package-data"]["sessionward"]


def test_the_script_is_valid_javascript(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        skip_or_fail("node is not installed: cannot syntax-check sessionward.js")
    module = tmp_path / "sessionward.mjs"  # .mjs: checked as an ES module on every node version
    module.write_bytes(client_script())
    result = subprocess.run([node, "--check", str(module)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr

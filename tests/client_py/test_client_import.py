"""httpx is optional: sessionward imports without it, and ``sessionward.client`` says which
extra to install."""

from __future__ import annotations

import subprocess
import sys

import pytest

BLOCK = "import sys; sys.modules['httpx'] = None; sys.modules['anyio'] = None; "


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCK + code], capture_output=True, text=True, timeout=60)


def test_sessionward_imports_without_httpx() -> None:
    result = run("import sessionward, sessionward.flask, sessionward.transport; print('ok')")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize("module", ["sessionward.client", "sessionward.client.auth"])
def test_the_client_names_the_extra_to_install(module: str) -> None:
    result = run(f"import {module}")
    assert result.returncode == 1
    assert "ImportError: sessionward.client needs httpx and anyio" in result.stderr
    assert "pip install 'sessionward[client]'" in result.stderr

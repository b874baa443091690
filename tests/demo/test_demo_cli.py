"""``sessionward demo``: its options, its error without the extra, and a real server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sessionward.browser import CLIENT_SCRIPT_PATH
from sessionward.cli import main
from sessionward.demo.server import default_store


def test_demo_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--host", "--port", "--store"):
        assert option in out


def test_default_store_is_a_sqlite_file_in_the_temp_dir() -> None:
    assert default_store().startswith("sqlite:///") and default_store().endswith("sessionward-demo.sqlite3")


def test_missing_extra_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn -> ImportError
    assert main(["demo", "--port", "1"]) == 1
    err = capsys.readouterr().err
    assert "pip install 'sessionward[fastapi]'" in err and "Traceback" not in err


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_demo_serves_on_a_real_port(tmp_path: Path) -> None:
    port = _free_port()
    store = f"sqlite:///{tmp_path}/demo.db"
    command = [sys.executable, "-m", "sessionward", "demo", "--port", str(port), "--store", store]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=5) as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    page = http.get("/")
                    break
                except httpx.TransportError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        output = process.stdout.read() if process.stdout else ""
                        pytest.fail(f"the demo did not start:\n{output[-3000:]}")
                    time.sleep(0.1)
            assert page.status_code == 200 and "sessionward" in page.text
            script = http.get(CLIENT_SCRIPT_PATH)
            assert script.status_code == 200
            assert script.headers["content-type"] == "text/javascript; charset=utf-8"
            assert "export async function fetch" in script.text
    finally:
        process.terminate()
        try:
            output, _ = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    assert f"open {base}/" in output
    assert "cookie_secure=False" in output and store in output

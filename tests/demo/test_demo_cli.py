"""``sessionward demo``: its options, its error without the extra, and a real server."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.exceptions import StarletteDeprecationWarning

from sessionward.browser import CLIENT_SCRIPT_PATH
from sessionward.cli import main
from sessionward.demo.server import default_store


def test_demo_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--host", "--port", "--store", "--access-token-validity", "--max-auth-age"):
        assert option in out


def test_default_store_is_a_sqlite_file_in_the_temp_dir() -> None:
    assert default_store().startswith("sqlite:///") and default_store().endswith("sessionward-demo.sqlite3")


def test_missing_extra_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn -> ImportError
    assert main(["demo", "--port", "1"]) == 1
    err = capsys.readouterr().err
    assert "pip install 'sessionward[demo]'" in err and "Traceback" not in err


@pytest.mark.parametrize("seconds", ["0", "-5", "86401", "100000000"])
def test_access_token_validity_out_of_range_is_a_configuration_error(
    seconds: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--port", "1", "--access-token-validity", seconds]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "--access-token-validity" in err and "1 to 86400" in err and seconds in err


@pytest.mark.parametrize("seconds", ["0", "-1", "86401"])
def test_max_auth_age_out_of_range_is_a_configuration_error(
    seconds: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--port", "1", "--max-auth-age", seconds]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "--max-auth-age" in err and "1 to 86400" in err and seconds in err


@pytest.mark.parametrize(("argv", "seconds"), [([], 60), (["--max-auth-age", "5"], 5)])
def test_max_auth_age_reaches_the_demo(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    argv: list[str],
    seconds: int,
) -> None:
    import uvicorn

    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.append(app))
    port = str(_free_port())
    assert main(["demo", "--port", port, "--store", f"sqlite:///{tmp_path}/demo.db", *argv]) == 0
    assert f"recovery codes need a sign-in at most {seconds} s old" in capsys.readouterr().out
    (app,) = served
    assert app.state.demo_max_auth_age == seconds


def test_access_token_validity_must_be_whole_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--access-token-validity", "2.5"])
    assert exit_info.value.code == 2
    assert "--access-token-validity" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "seconds"), [([], 15), (["--access-token-validity", "3"], 3)])
def test_access_token_validity_reaches_the_demo(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    argv: list[str],
    seconds: int,
) -> None:
    import uvicorn

    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.append(app))
    port = str(_free_port())
    assert main(["demo", "--port", port, "--store", f"sqlite:///{tmp_path}/demo.db", *argv]) == 0
    assert f"access tokens live {seconds} s" in capsys.readouterr().out
    (app,) = served
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StarletteDeprecationWarning)
        from starlette.testclient import TestClient
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        page = client.get("/").text
        assert f'data-access-token-validity="{seconds}"' in page and "{{" not in page
        signed_in = client.post("/api/signin", json={"name": "alice"})
        assert signed_in.status_code == 200
        front = json.loads(base64.b64decode(signed_in.headers["front-token"]))
        lifetime_ms = front["ate"] - time.time() * 1000
        assert (seconds - 2) * 1000 < lifetime_ms <= seconds * 1000


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


def test_busy_port_is_one_line_and_exit_status_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["demo", "--port", str(port), "--store", f"sqlite:///{tmp_path}/demo.db"])
    captured = capsys.readouterr()
    assert code == 4
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert f"port {port} on 127.0.0.1 is already in use" in captured.err and "--port" in captured.err
    assert "open http" not in captured.out  # refused before announcing a URL


def test_busy_port_from_the_installed_command(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [
            sys.executable,
            "-m",
            "sessionward",
            "demo",
            "--port",
            str(port),
            "--store",
            f"sqlite:///{tmp_path}/demo.db",
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 4
    assert result.stderr.count("\n") == 1 and "already in use" in result.stderr

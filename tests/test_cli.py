"""The ``sessionward`` command line, in-process and as an installed script."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.engines import recorded_events

from sessionward import ClientInfo, Config, SessionWard, TryRefreshTokenError
from sessionward.cli import main
from sessionward.events import RevocationReason
from sessionward.stores.changes import Change
from sessionward.stores.schema import latest_version

SCHEMA_LINE = f"schema version {latest_version('sqlite')}\n"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SESSIONWARD_ACCESS_TOKEN_ALGORITHM", "HS256")
    return f"sqlite:///{tmp_path}/cli.db"


def kid_of(token: str) -> str:
    segment = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))["kid"])


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_migrate_prints_the_schema_version(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "migrate", "--store", store) == (0, SCHEMA_LINE, "")
    assert run(capsys, "migrate", "--store", store)[1] == SCHEMA_LINE


def test_sessions_list_and_revoke(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    with SessionWard(Config(store=store, access_token_algorithm="HS256")) as engine:
        handles = [engine.create_new_session("alice").handle for _ in range(2)]
        other = engine.create_new_session("bob").handle
    code, out, _ = run(capsys, "sessions", "list", "--user", "alice", "--store", store, "--json")
    assert code == 0
    assert sorted(row["handle"] for row in json.loads(out)) == sorted(handles)
    code, out, _ = run(capsys, "sessions", "list", "--user", "alice", "--store", store)
    assert all(handle in out for handle in handles) and "expires" in out
    code, out, _ = run(capsys, "sessions", "revoke", handles[0], "--store", store)
    assert (code, out.splitlines()) == (0, ["revoked 1 session(s)", handles[0]])
    code, out, _ = run(capsys, "sessions", "revoke", "--user", "alice", "--store", store)
    assert out.splitlines() == ["revoked 1 session(s)", handles[1]]
    assert "no live sessions" in run(capsys, "sessions", "list", "--user", "alice", "--store", store)[1]
    assert other in run(capsys, "sessions", "list", "--user", "bob", "--store", store)[1]


def test_sessions_list_shows_the_metadata(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    agent = (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
    )
    with SessionWard(Config(store=store, access_token_algorithm="HS256")) as engine:
        kept = engine.create_new_session("alice", client=ClientInfo("198.51.100.7", agent)).handle
        brief = engine.create_new_session(
            "alice", persistent=False, client=ClientInfo("2001:db8::5", "curl/8.5.0\x1b[31m")
        ).handle
    code, out, _ = run(capsys, "sessions", "list", "--user", "alice", "--store", store, "--json")
    assert code == 0
    rows = {row["handle"]: row for row in json.loads(out)}
    assert rows[kept]["ip"] == "198.51.100.7" and rows[kept]["user_agent"] == agent
    assert rows[kept]["persistent"] is True and rows[brief]["persistent"] is False
    for row in rows.values():
        assert row["auth_time"] > 0 and row["last_active_at"] >= row["created_at"]
    code, out, _ = run(capsys, "sessions", "list", "--user", "alice", "--store", store)
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert "ip 198.51.100.7" in lines[kept] and "persistent" in lines[kept]
    assert "last active" in lines[kept] and "authenticated" in lines[kept]
    assert agent not in lines[kept] and agent[:30] in lines[kept] and "…" in lines[kept]
    assert "ip 2001:db8::5" in lines[brief] and "browser session" in lines[brief]
    assert "\x1b" not in out  # control characters never reach the terminal


def test_sessions_revoke_reports_an_administrators_revocation(
    store: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with SessionWard(Config(store=store, access_token_algorithm="HS256")) as engine:
        handles = [engine.create_new_session("alice").handle for _ in range(2)]
    monkeypatch.setenv("SESSIONWARD_EVENT_SUBSCRIBERS", "support.engines:record_event")
    recorded_events.clear()
    run(capsys, "sessions", "revoke", handles[0], "--store", store)
    run(capsys, "sessions", "revoke", "--user", "alice", "--store", store)
    assert [(e.handle, e.reason) for e in recorded_events] == [
        (handles[0], RevocationReason.ADMIN),
        (handles[1], RevocationReason.ADMIN),
    ]


def test_sessions_revoke_needs_a_target(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "sessions", "revoke", "--store", store)
    assert code == 2
    assert "handles" in err and "Traceback" not in err


def test_keys_list_rotate_and_jwks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = f"sqlite:///{tmp_path}/keys.db"
    monkeypatch.setenv("SESSIONWARD_ACCESS_TOKEN_ALGORITHM", "ES256")
    code, out, _ = run(capsys, "keys", "list", "--store", store, "--json")
    keys = json.loads(out)
    assert code == 0 and len(keys) == 2  # this interval's key and the next one, published early
    assert sum(key["signing"] for key in keys) == 1
    code, out, _ = run(capsys, "keys", "rotate", "--store", store)
    new_kid = out.split()[-1]
    code, out, _ = run(capsys, "keys", "list", "--store", store, "--json")
    listed = json.loads(out)
    assert any(key["kid"] == new_kid for key in listed)
    code, out, _ = run(capsys, "jwks", "--store", store)
    jwks = json.loads(out)
    assert new_kid in {key["kid"] for key in jwks["keys"]}
    assert all("d" not in key for key in jwks["keys"])  # never private material
    code, out, _ = run(capsys, "keys", "list", "--store", store)
    assert "signs and verifies" in out and "-----BEGIN" not in out


def test_keys_retire(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = f"sqlite:///{tmp_path}/retire.db"
    monkeypatch.setenv("SESSIONWARD_ACCESS_TOKEN_ALGORITHM", "ES256")
    config = Config(store=store, access_token_algorithm="ES256")
    with SessionWard(config) as engine:
        token = engine.create_new_session("alice").access_token.value
        keys = engine.signing_keys()
    signer = next(key.kid for key in keys if key.signing)
    other = next(key.kid for key in keys if not key.signing)

    code, out, err = run(capsys, "keys", "retire", "--store", store, "--", other)
    assert (code, err) == (0, "")
    assert out == f"retired signing key {other}: its access tokens are refused from now on\n"
    code, out, err = run(capsys, "keys", "retire", "--store", store, "--", signer)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == f"retired signing key {signer}: its access tokens are refused from now on"
    new_signer = lines[1].split()[-1]
    assert lines[1].startswith("it was signing: new signing key") and new_signer not in (signer, other)

    code, out, _ = run(capsys, "keys", "retire", "--store", store, "--", signer)
    assert (code, out) == (0, f"signing key {signer} was already retired\n")
    code, out, err = run(capsys, "keys", "retire", "no-such-kid", "--store", store)
    assert code == 1 and out == ""
    assert "'no-such-kid'" in err and err.count("\n") == 1 and "Traceback" not in err

    code, out, _ = run(capsys, "keys", "list", "--store", store)
    retired_lines = [line for line in out.splitlines() if "retired" in line]
    assert {line.split()[0] for line in retired_lines} == {signer, other}
    assert all(line.endswith("refused") for line in retired_lines)
    assert f"{new_signer}  ES256" in out and "signs and verifies" in out
    code, out, _ = run(capsys, "keys", "list", "--store", store, "--json")
    listed = {key["kid"]: key for key in json.loads(out)}
    assert listed[signer]["retired_at"] is not None and listed[signer]["signing"] is False
    assert listed[new_signer]["signing"] is True and listed[new_signer]["retired_at"] is None
    code, out, _ = run(capsys, "jwks", "--store", store)
    published = {key["kid"] for key in json.loads(out)["keys"]}
    assert new_signer in published and not published & {signer, other}
    with SessionWard(config) as engine, pytest.raises(TryRefreshTokenError):
        engine.get_session(token)


def test_keys_rotate_and_retire_from_another_process_reach_a_running_engine(tmp_path: Path) -> None:
    """A running engine learns a key rotated by ``sessionward keys rotate`` in another process
    (its tokens verify; it signs with it once the change reaches it) and refuses the tokens
    of a key retired by ``sessionward keys retire``."""
    store = f"sqlite:///{tmp_path}/processes.db"
    # The change feed off: what its listener would hand the engine is handed by hand (the
    # feed end to end: tests/engine/test_key_retirement.py).
    engine = SessionWard(Config(store=store, access_token_algorithm="HS256", change_feed=False))
    environment = {**os.environ, "SESSIONWARD_ACCESS_TOKEN_ALGORITHM": "HS256"}

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sessionward", "keys", argv[0], "--store", store]
            + (["--", *argv[1:]] if argv[1:] else []),
            capture_output=True,
            text=True,
            check=False,
            env=environment,
        )

    try:
        old = engine.create_new_session("alice").access_token.value
        rotated = cli("rotate")
        assert rotated.returncode == 0, rotated.stderr
        new_kid = rotated.stdout.split()[-1]
        with SessionWard(Config(store=store, access_token_algorithm="HS256")) as other:
            signed_elsewhere = other.create_new_session("bob").access_token.value
        assert engine.get_session(signed_elsewhere).user_id == "bob"  # learnt on first sight
        keys = engine._core.keys
        for entry in engine.store.load_keys("access_token_signing_key/HS256/"):
            if json.loads(entry.value)["kid"] == new_kid:
                keys.on_store_key_change(Change(1, "key_added", entry.name, 0))
        assert kid_of(engine.create_new_session("carol").access_token.value) == new_kid

        old_kid = kid_of(old)
        retired = cli("retire", old_kid)  # after "--": a kid may start with "-"
        assert retired.returncode == 0, retired.stderr
        assert engine.get_session(old).user_id == "alice"  # until the change reaches it
        keys.on_store_key_change(Change(2, "key_added", f"access_token_signing_key/retired/{old_kid}", 0))
        with pytest.raises(TryRefreshTokenError):
            engine.get_session(old)
    finally:
        engine.close()


def test_sweep_counts_expired_sessions(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    with SessionWard(
        Config(store=store, access_token_algorithm="HS256"), clock=lambda: 1_000_000_000.0
    ) as engine:
        engine.create_new_session("old")
    assert run(capsys, "sweep", "--store", store)[1] == "deleted 1 expired session(s)\n"
    assert run(capsys, "sweep", "--store", store)[1] == "deleted 0 expired session(s)\n"


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        (["jwks", "--store", "mysql://x"], 2, "store"),
        (["jwks", "--store", "sqlite:///x.db?bogus=1"], 2, "bogus"),
        (["jwks", "--store", "sqlite:////nonexistent-dir/x/y.db"], 2, "does not exist"),
        (["jwks", "--store", "sqlite:////"], 3, "unavailable"),  # a directory, not a file
    ],
)
def test_errors_are_one_line_with_exit_codes(
    argv: list[str], code: int, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result, _out, err = run(capsys, *argv)
    assert result == code
    assert needle in err and "Traceback" not in err and err.count("\n") == 1


def test_bad_environment_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SESSIONWARD_ACCESS_TOKEN_VALIDITY", "soon")
    code, _, err = run(capsys, "jwks", "--store", "sqlite:///:memory:")
    assert code == 2 and "access_token_validity" in err


def test_python_dash_m_and_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sessionward", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    for command in ("migrate", "sweep", "sessions", "keys", "jwks"):
        assert command in result.stdout


def test_installed_script(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("sessionward")
    if not script.exists():
        pytest.fail(f"the sessionward console script is not installed next to {sys.executable}")
    result = subprocess.run(
        [str(script), "migrate", "--store", f"sqlite:///{tmp_path}/s.db"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, SCHEMA_LINE)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"sessionward {version('sessionward')}\n"


def test_sqlite_file_in_a_missing_directory_is_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "missing" / "cli.db"
    code, out, err = run(capsys, "sessions", "list", "--user", "alice", "--store", f"sqlite:///{path}")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and str(path) in err and "does not exist" in err

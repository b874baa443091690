"""The ``sessionward`` command line: the demo, migrations, housekeeping, sessions and keys.

    sessionward --version
    sessionward demo [--host 127.0.0.1] [--port 8000] [--store URL] [--access-token-validity S]
                     [--max-auth-age S]
    sessionward migrate --store URL
    sessionward sweep --store URL
    sessionward sessions list --user U [--json]   (most recently active first)
    sessionward sessions revoke HANDLE [HANDLE ...] | --user U
    sessionward keys list [--json]   (retired keys too)
    sessionward keys rotate
    sessionward keys retire KID
    sessionward jwks

Every command takes ``--store URL``; without it the store (and every other option) comes
from the ``SESSIONWARD_*`` environment (the demo instead defaults to its own SQLite file
in the temporary directory and its own settings) (:meth:`sessionward.Config.from_env`). Errors are one
line on stderr: exit 2 for invalid configuration, 3 when the store is unreachable, 4 when
the demo cannot listen on its port (already taken), 1 for any other failure.
``sessionward --version`` prints the version.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__
from .config import Config
from .demo.server import CannotListenError, MissingExtraError, default_store
from .engine.keyring import RETIRED_KEY_PREFIX, retired_kid
from .engine.sync import SessionWard
from .errors import ConfigError, SessionWardError, StorageUnavailableError
from .events import RevocationReason
from .stores.urls import open_store

__all__ = ["main"]


def _when(ms_or_s: int, *, seconds: bool = False) -> str:
    value = ms_or_s if seconds else ms_or_s / 1000
    return datetime.datetime.fromtimestamp(value, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _config(args: argparse.Namespace) -> Config:
    config = Config.from_env()
    if args.store:
        config = dataclasses.replace(config, store=args.store)
    return config


def _demo(args: argparse.Namespace, out: Callable[[str], None]) -> None:
    from .demo.server import run

    run(
        args.host,
        args.port,
        args.store or default_store(),
        out,
        args.access_token_validity,
        args.max_auth_age,
    )


def _migrate(args: argparse.Namespace, out: Callable[[str], None]) -> None:
    store = open_store(_config(args).store)
    try:
        out(f"schema version {store.migrate()}")
    finally:
        store.close()


def _sweep(engine: SessionWard, args: argparse.Namespace, out: Callable[[str], None]) -> None:
    removed = engine.delete_expired_sessions()
    engine.signing_keys()  # a key sync also deletes keys that no longer verify anything
    out(f"deleted {removed} expired session(s)")


# The longest user agent ``sessions list`` prints in its table (``--json`` prints all).
_LIST_USER_AGENT_WIDTH = 40


def _short(text: str | None, width: int) -> str:
    if not text:
        return "-"
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _sessions_list(engine: SessionWard, args: argparse.Namespace, out: Callable[[str], None]) -> None:
    rows: list[dict[str, Any]] = [
        {
            "handle": info.handle,
            "user_id": info.user_id,
            "created_at": info.created_at,
            "last_active_at": info.last_active_at,
            "expires_at": info.expires_at,
            "ip": info.ip,
            "user_agent": info.user_agent,
            "created_ip": info.created_ip,
            "created_user_agent": info.created_user_agent,
            "persistent": info.persistent,
            "auth_time": info.auth_time,
        }
        for info in engine.get_all_sessions_for_user(args.user)
    ]
    if args.json:
        out(json.dumps(rows, indent=2))
        return
    if not rows:
        out(f"no live sessions for user {args.user!r}")
    for row in rows:
        out(
            f"{row['handle']}  created {_when(row['created_at'])}  "
            f"last active {_when(row['last_active_at'])}  expires {_when(row['expires_at'])}  "
            f"ip {row['ip'] or '-'}  "
            f"{'persistent' if row['persistent'] else 'browser session'}  "
            f"authenticated {_when(row['auth_time'])}  "
            f"agent {_short(row['user_agent'], _LIST_USER_AGENT_WIDTH)}"
        )


def _sessions_revoke(engine: SessionWard, args: argparse.Namespace, out: Callable[[str], None]) -> None:
    if args.user is not None and args.handles:
        raise ConfigError("sessions revoke: give handles or --user, not both")
    if args.user is not None:
        removed = engine.revoke_all_sessions_for_user(args.user, reason=RevocationReason.ADMIN)
    elif args.handles:
        removed = engine.revoke_multiple_sessions(list(args.handles), reason=RevocationReason.ADMIN)
    else:
        raise ConfigError("sessions revoke: give one or more handles, or --user USER")
    out(f"revoked {len(removed)} session(s)")
    for handle in removed:
        out(handle)


def _retired_keys(engine: SessionWard) -> list[dict[str, Any]]:
    """The tombstones of retired keys (any algorithm), oldest retirement first."""
    found: list[dict[str, Any]] = []
    for entry in engine.store.load_keys(RETIRED_KEY_PREFIX):
        kid = retired_kid(entry.name)
        if kid is None:
            continue
        try:
            value = json.loads(entry.value)
            retired_at = int(value["retired_at"])
            algorithm = str(value.get("alg", "?"))
        except (ValueError, TypeError, KeyError):
            retired_at, algorithm = entry.created_at_time // 1000, "?"
        found.append({"kid": kid, "algorithm": algorithm, "retired_at": retired_at})
    return sorted(found, key=lambda key: (key["retired_at"], key["kid"]))


def _keys_list(engine: SessionWard, args: argparse.Namespace, out: Callable[[str], None]) -> None:
    keys = engine.signing_keys()
    retired = _retired_keys(engine)
    if args.json:
        listed = [{**key._asdict(), "retired_at": None} for key in keys]
        listed += [{**key, "not_before": None, "signing": False} for key in retired]
        out(json.dumps(listed, indent=2))
        return
    for key in keys:
        role = "signs and verifies" if key.signing else "verifies"
        out(f"{key.kid}  {key.algorithm}  from {_when(key.not_before, seconds=True)}  {role}")
    for tombstone in retired:
        out(
            f"{tombstone['kid']}  {tombstone['algorithm']}  retired "
            f"{_when(tombstone['retired_at'], seconds=True)}  refused"
        )


def _keys_rotate(engine: SessionWard, args: argparse.Namespace, out: Callable[[str], None]) -> None:
    out(f"new signing key {engine.rotate_signing_key()}")


def _keys_retire(engine: SessionWard, args: argparse.Namespace, out: Callable[[str], None]) -> None:
    engine.signing_keys()  # starts the engine (migrating the store) and syncs the keys
    if any(key["kid"] == args.kid for key in _retired_keys(engine)):
        out(f"signing key {args.kid} was already retired")
        return
    signing = any(key.kid == args.kid and key.signing for key in engine.signing_keys())
    engine.retire_signing_key(args.kid)
    out(f"retired signing key {args.kid}: its access tokens are refused from now on")
    if signing:
        new = next(key.kid for key in engine.signing_keys() if key.signing)
        out(f"it was signing: new signing key {new}")


def _jwks(engine: SessionWard, args: argparse.Namespace, out: Callable[[str], None]) -> None:
    out(json.dumps(engine.jwks(), indent=2))


def _parser() -> argparse.ArgumentParser:
    store_option = argparse.ArgumentParser(add_help=False)
    store_option.add_argument(
        "--store",
        metavar="URL",
        help="store URL (sqlite:///path.db, postgresql://..., redis://...); default: SESSIONWARD_STORE",
    )
    parser = argparse.ArgumentParser(prog="sessionward", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"sessionward {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run the demo web app in a browser (needs the demo extra)",
        description="Serve the sessionward demo (Starlette + uvicorn, 15-second access tokens by default, "
        "plain http with cookie_secure=False): sign in by name, watch the browser client refresh, "
        "update the JWT payload and session data, see and sign out your devices, re-authenticate "
        "for a sensitive action, simulate token theft.",
    )
    demo.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    demo.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    demo.add_argument(
        "--store",
        metavar="URL",
        help="store URL (default: a SQLite file in the temporary directory; SESSIONWARD_* is ignored)",
    )
    demo.add_argument(
        "--access-token-validity",
        metavar="SECONDS",
        type=int,
        default=None,
        help="how long an access token lives, 1 to 86400 seconds (default: 15)",
    )
    demo.add_argument(
        "--max-auth-age",
        metavar="SECONDS",
        type=int,
        default=None,
        help="how recent a sign-in the recovery codes need, 1 to 86400 seconds (default: 60)",
    )
    demo.set_defaults(raw=_demo)
    commands.add_parser("migrate", parents=[store_option], help="apply schema migrations").set_defaults(
        raw=_migrate
    )
    commands.add_parser("sweep", parents=[store_option], help="delete expired sessions").set_defaults(
        run=_sweep
    )
    sessions = commands.add_parser("sessions", help="list or revoke sessions").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    listing = sessions.add_parser(
        "list",
        parents=[store_option],
        help="a user's live sessions, most recently active first (created, last active, IP, "
        "user agent, persistent, authenticated)",
    )
    listing.add_argument("--user", required=True, help="the user id")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(run=_sessions_list)
    revoke = sessions.add_parser("revoke", parents=[store_option], help="end sessions")
    revoke.add_argument("handles", nargs="*", metavar="HANDLE", help="session handles to revoke")
    revoke.add_argument("--user", help="revoke every session of this user")
    revoke.set_defaults(run=_sessions_revoke)
    keys = commands.add_parser("keys", help="list, rotate or retire signing keys").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    key_list = keys.add_parser(
        "list", parents=[store_option], help="keys that verify (and the one that signs)"
    )
    key_list.add_argument("--json", action="store_true", help="print JSON")
    key_list.set_defaults(run=_keys_list)
    keys.add_parser("rotate", parents=[store_option], help="create a key that signs from now").set_defaults(
        run=_keys_rotate
    )
    retire = keys.add_parser(
        "retire",
        parents=[store_option],
        help="withdraw a key for good: its tokens are refused (a new key signs if it was signing)",
    )
    retire.add_argument("kid", metavar="KID", help="the key's kid (see keys list)")
    retire.set_defaults(run=_keys_retire)
    commands.add_parser("jwks", parents=[store_option], help="print the public keys (RFC 7517)").set_defaults(
        run=_jwks
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)

    def out(line: str) -> None:
        print(line, flush=True)

    try:
        raw: Any = getattr(args, "raw", None)
        if raw is not None:
            raw(args, out)
        else:
            with SessionWard(_config(args)) as engine:
                args.run(engine, args, out)
    except ConfigError as exc:
        print(f"sessionward: configuration error: {exc}", file=sys.stderr)
        return 2
    except MissingExtraError as exc:
        print(f"sessionward: {exc}", file=sys.stderr)
        return 1
    except CannotListenError as exc:
        print(f"sessionward demo: {exc}", file=sys.stderr)
        return 4
    except StorageUnavailableError as exc:
        print(f"sessionward: store unavailable: {exc}", file=sys.stderr)
        return 3
    except SessionWardError as exc:
        print(f"sessionward: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (``sessionward jwks | head``): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

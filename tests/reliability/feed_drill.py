"""The change-feed drill: four verifier processes on one store, a fifth making the changes.

Shared by ``test_revocation_drill.py`` and ``bench/revocation_drill.py`` (not a test module).

The verifiers, each checking one session's access token in a tight loop:

- one real server of each framework (:data:`frameworks.clients.SERVERS`: Flask and Django
  under gunicorn, FastAPI under uvicorn, one worker each), its protected route polled by a
  client thread of this process over 127.0.0.1 with keep-alive (``Authorization: Bearer``);
- one plain engine process (``feed_verifier.py``).

Every store call of the four is counted (:meth:`Drill.store_calls`): the servers run the
entry points of ``drill_apps.py``, the plain engine process wraps its store itself.

This process creates the sessions and makes the change (``revoke_session``,
``update_jwt_payload``, ``retire_signing_key``); the latency of a verifier is the time from
the return of that call to the first refusal the verifier saw (CLOCK_MONOTONIC, shared by
every process of the machine; negative when the refusal came before the call returned).
:func:`cut_listeners` has the server drop every change-feed listener connection of the
drill's processes (PostgreSQL: ``pg_terminate_backend``; Redis: ``CLIENT KILL``).
"""

from __future__ import annotations

import base64
import json
import math
import os
import queue
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import httpx
from frameworks.clients import SERVERS, running_server
from reliability.drill_apps import INTERVAL as COUNTS_INTERVAL
from support.processes import child_environment

from sessionward import Config, SessionTokens, SessionWard

VERIFIER_SCRIPT = Path(__file__).with_name("feed_verifier.py")
ENGINE = "engine"
KINDS = (*SERVERS, ENGINE)
"""The verifier kinds, in report order."""
READY = 5
"""Successful verifications each verifier makes before the change."""
OPTIONS: dict[str, Any] = {
    "access_token_validity": 3600,
    "refresh_token_validity": 7200,
    "cookie_secure": False,
}
"""Engine options of every process of the drill (the algorithm and everything else default)."""

ERROR_OF_MESSAGE = {
    "unauthorised": "UnauthorizedError",
    "try refresh token": "TryRefreshTokenError",
    "token theft detected": "TokenTheftDetectedError",
    "session store unavailable": "StorageUnavailableError",
}


def kid_of(token: str) -> str:
    """The ``kid`` in a JWT's header."""
    header = token.split(".", 1)[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


class Verifier:
    """One verifier: :meth:`watch` starts checking a token in a loop; ``events`` receives
    ``{"event": "ready" | "fail", "id": ..., "at": ..., "error": ..., "last_ok": ...,
    "tolerated": ...}``."""

    kind: str

    def __init__(self) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()

    def watch(self, ident: int, token: str, ready: int = READY, tolerate: tuple[str, ...] = ()) -> None:
        """Verify ``token`` in a loop until the first refusal other than the errors named in
        ``tolerate`` (those are counted, ``tolerated``, and the loop goes on). The ``fail``
        event carries ``last_ok``: when the last verification that passed began
        (CLOCK_MONOTONIC seconds, ``None`` if none did)."""
        raise NotImplementedError

    def check(self, tokens: list[str]) -> list[list[Any]]:
        """Verify each token once: ``["ok", payload]`` or ``["err", error class name]``."""
        raise NotImplementedError

    def counts(self) -> dict[str, Any] | None:
        """Store calls and verifications so far (``None`` when this verifier cannot count)."""
        return None

    def verifications(self) -> int:
        """How many verifications it made since the last :meth:`reset`."""
        raise NotImplementedError

    def reset(self) -> None:
        """Zero the counters."""

    def close(self) -> None:
        raise NotImplementedError


def _http_outcome(response: httpx.Response) -> list[Any]:
    if response.status_code == 200:
        return ["ok", response.json().get("payload")]
    try:
        message = response.json().get("message", "")
    except ValueError:
        message = ""
    return ["err", ERROR_OF_MESSAGE.get(message, f"HTTP {response.status_code} {message}".strip())]


class HttpVerifier(Verifier):
    """A client thread polling one server's ``GET /protected`` over one keep-alive connection."""

    def __init__(self, kind: str, base_url: str) -> None:
        super().__init__()
        self.kind = kind
        self.base_url = base_url
        self._watch: tuple[int, str, int, tuple[str, ...]] | None = None
        self._wake = threading.Event()
        self._closed = False
        self.requests = 0
        self._requests_at_reset = 0
        self._thread = threading.Thread(target=self._run, name=f"drill-{kind}", daemon=True)
        self._thread.start()

    @staticmethod
    def _headers(token: str) -> dict[str, str]:
        return {"authorization": f"Bearer {token}", "st-auth-mode": "header"}

    def watch(self, ident: int, token: str, ready: int = READY, tolerate: tuple[str, ...] = ()) -> None:
        self._watch = (ident, token, ready, tolerate)
        self._wake.set()

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=10) as http:
            while not self._closed:
                watch = self._watch
                if watch is None:
                    self._wake.wait(0.5)
                    self._wake.clear()
                    continue
                ident, token, ready, tolerate = watch
                headers = self._headers(token)
                seen = tolerated = 0
                last_ok: float | None = None
                while not self._closed:
                    began = time.monotonic()
                    try:
                        response = http.get("/protected", headers=headers)
                    except httpx.TransportError as exc:
                        self.events.put(
                            {"event": "fail", "id": ident, "at": time.monotonic(), "error": repr(exc)}
                        )
                        break
                    self.requests += 1
                    if response.status_code != 200:
                        at = time.monotonic()
                        error = _http_outcome(response)[1]
                        if error in tolerate:
                            tolerated += 1
                            time.sleep(0.001)  # a store outage: leave the CPU to the others
                            if self._watch is not watch:
                                break
                            continue
                        self.events.put(
                            {
                                "event": "fail",
                                "id": ident,
                                "at": at,
                                "error": error,
                                "verifies": seen + 1,
                                "last_ok": last_ok,
                                "tolerated": tolerated,
                            }
                        )
                        break
                    last_ok = began
                    seen += 1
                    if seen == ready:
                        self.events.put({"event": "ready", "id": ident})
                    if self._watch is not watch:
                        break
                if self._watch is watch:
                    self._watch = None

    def verifications(self) -> int:
        return self.requests - self._requests_at_reset

    def reset(self) -> None:
        self._requests_at_reset = self.requests

    def check(self, tokens: list[str]) -> list[list[Any]]:
        with httpx.Client(base_url=self.base_url, timeout=10) as http:
            return [_http_outcome(http.get("/protected", headers=self._headers(token))) for token in tokens]

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join(15)


class EngineVerifier(Verifier):
    """The plain engine process (``feed_verifier.py``) and a thread reading its JSON lines."""

    kind = ENGINE

    def __init__(self, url: str, options: dict[str, Any], log: Path) -> None:
        super().__init__()
        self._log = log.open("wb")
        env = child_environment({"SESSIONWARD_STORE": url})  # marks the process as the drill's
        self.process = subprocess.Popen(
            [sys.executable, str(VERIFIER_SCRIPT), url, json.dumps(options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
        )
        self._replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._next = 0
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self._reader.start()
        started = self._replies.get(timeout=60)
        if started is None:
            raise RuntimeError(
                f"the engine verifier did not start: {log.read_text(errors='replace')[-3000:]}"
            )

    def _read(self, stream: IO[bytes]) -> None:
        for line in stream:
            message = json.loads(line)
            if message["event"] in ("ready", "fail"):
                self.events.put(message)
            else:
                self._replies.put(message)
        self._replies.put(None)

    def _send(self, command: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        with self._lock:
            self.process.stdin.write((json.dumps(command) + "\n").encode())
            self.process.stdin.flush()

    def _ask(self, command: dict[str, Any]) -> dict[str, Any]:
        self._next += 1
        self._send({**command, "id": -self._next})
        while True:
            reply = self._replies.get(timeout=60)
            if reply is None:
                raise RuntimeError("the engine verifier exited")
            if reply.get("id") == -self._next:
                return reply

    def watch(self, ident: int, token: str, ready: int = READY, tolerate: tuple[str, ...] = ()) -> None:
        self._send({"cmd": "watch", "id": ident, "token": token, "ready": ready, "tolerate": list(tolerate)})

    def check(self, tokens: list[str]) -> list[list[Any]]:
        return list(self._ask({"cmd": "check", "tokens": tokens})["results"])

    def counts(self) -> dict[str, Any] | None:
        return self._ask({"cmd": "counts"})

    def reset(self) -> None:
        self._ask({"cmd": "reset"})

    def verifications(self) -> int:
        counts = self.counts()
        return int(counts["verifies"]) if counts else 0

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()


@dataclass
class Outcome:
    """What each verifier saw after one change: the latency in ms (``None``: nothing within
    the deadline) and the error it answered."""

    latency_ms: dict[str, float | None] = field(default_factory=dict)
    error: dict[str, str | None] = field(default_factory=dict)
    call_ms: float = 0.0
    """How long the call itself took."""
    accepted_ms: dict[str, float | None] = field(default_factory=dict)
    """When the last verification that passed began, in ms from the call's return
    (negative: before it; ``None``: none passed)."""
    tolerated: dict[str, int] = field(default_factory=dict)
    """How many tolerated refusals (see :attr:`Drill.tolerate`) the verifier answered."""


class Drill:
    """The four verifiers on one store and the engine of this process that makes the changes.

    ``verifier_url``: the store URL of the verifiers (default ``url``: another way to the
    same store, such as a proxy). ``tolerate``: the refusals (error class names) that do not
    end a verifier's loop (see :meth:`Verifier.watch`).
    """

    def __init__(
        self,
        url: str,
        logs: Path,
        options: dict[str, Any] | None = None,
        *,
        verifier_url: str | None = None,
        tolerate: tuple[str, ...] = (),
    ) -> None:
        self.url = url
        self.verifier_url = verifier_url or url
        self.tolerate = tolerate
        self.options = {**OPTIONS, **(options or {})}
        self.config = Config(store=url, **self.options)
        verifier_config = Config(store=self.verifier_url, **self.options)
        self.engine = SessionWard(self.config)
        self.engine.jwks()  # migrations and keys before the verifiers start
        self._stack = ExitStack()
        self.verifiers: list[Verifier] = []
        self._ident = 0
        self.counts_dir = logs / "store-calls"
        self.counts_dir.mkdir(exist_ok=True)
        self._baseline: dict[str, Counter[str]] = {}
        try:
            for kind in SERVERS:
                with _environment(SESSIONWARD_TEST_DRILL_COUNTS=str(self.counts_dir)):
                    server = running_server(
                        kind, verifier_config, entry_points="reliability.drill_apps", log=logs / f"{kind}.log"
                    )
                    base = self._stack.enter_context(server)
                self.verifiers.append(HttpVerifier(kind, base))
            log = logs / "engine-verifier.log"
            self.verifiers.append(EngineVerifier(self.verifier_url, self.options, log))
        except BaseException:
            self.close()
            raise

    def _server_calls(self) -> dict[str, Counter[str]]:
        found: dict[str, Counter[str]] = {}
        for path in self.counts_dir.glob("*.json"):
            kind = path.name.rsplit("-", 1)[0]
            found.setdefault(kind, Counter()).update(json.loads(path.read_text())["calls"])
        missing = set(SERVERS) - set(found)
        assert not missing, f"no store-call counts from {sorted(missing)}"
        assert all(found.values()), f"a server made no store call at all (is it counting?): {found}"
        return found

    def store_calls(self) -> dict[str, dict[str, int]]:
        """Every verifier's store calls per method since :meth:`reset_counts`."""
        time.sleep(3 * COUNTS_INTERVAL)  # the servers write theirs every 50 ms
        calls = {
            kind: dict(counter - self._baseline.get(kind, Counter()))
            for kind, counter in self._server_calls().items()
        }
        engine = self.by_kind(ENGINE).counts()
        calls[ENGINE] = dict(engine["calls"]) if engine else {}
        return calls

    def verifications(self) -> dict[str, int]:
        """How many verifications each verifier made since :meth:`reset_counts` (HTTP: requests answered)."""
        made = {verifier.kind: verifier.verifications() for verifier in self.verifiers}
        return made

    def reset_counts(self) -> None:
        """Count store calls from now on."""
        time.sleep(3 * COUNTS_INTERVAL)
        self._baseline = self._server_calls()
        for verifier in self.verifiers:
            verifier.reset()

    def by_kind(self, kind: str) -> Verifier:
        return next(verifier for verifier in self.verifiers if verifier.kind == kind)

    def close(self) -> None:
        for verifier in self.verifiers:
            verifier.close()
        self._stack.close()
        self.engine.close()

    def _collect(self, ident: int, event: str, deadline: float) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for verifier in self.verifiers:
            while verifier.kind not in found:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    message = verifier.events.get(timeout=left)
                except queue.Empty:
                    break
                if message["id"] == ident and message["event"] == event:
                    found[verifier.kind] = message
                elif message["id"] == ident and message["event"] == "fail" and event == "ready":
                    raise AssertionError(f"{verifier.kind} refused a fresh token: {message}")
        return found

    def create(self, user_id: str, payload: dict[str, Any] | None) -> SessionTokens:
        """Create the session of :meth:`session` (a subclass may retry)."""
        return self.engine.create_new_session(user_id, payload)

    def session(self, payload: dict[str, Any] | None = None) -> SessionTokens:
        """A new session, its access token verified by every verifier (each in its loop now)."""
        self._ident += 1
        tokens = self.create(f"drill-{self._ident}", payload)
        token = tokens.access_token.value
        for verifier in self.verifiers:
            verifier.watch(self._ident, token, tolerate=self.tolerate)
        ready = self._collect(self._ident, "ready", time.monotonic() + 30)
        missing = [verifier.kind for verifier in self.verifiers if verifier.kind not in ready]
        assert not missing, f"never verified the fresh token: {missing}"
        return tokens

    def change(self, tokens: SessionTokens, action: Callable[[], Any], deadline: float = 5.0) -> Outcome:
        """Make the change (``action``) while every verifier loops on ``tokens``; wait for
        each verifier's first refusal (up to ``deadline`` seconds)."""
        ident = self._ident
        called = time.monotonic()
        action()
        returned = time.monotonic()
        failed = self._collect(ident, "fail", returned + deadline)
        outcome = Outcome(call_ms=(returned - called) * 1000)
        for verifier in self.verifiers:
            message = failed.get(verifier.kind)
            if message is None:
                outcome.latency_ms[verifier.kind] = None
                outcome.error[verifier.kind] = None
            else:
                outcome.latency_ms[verifier.kind] = (message["at"] - returned) * 1000
                outcome.error[verifier.kind] = message["error"]
                last_ok = message.get("last_ok")
                outcome.accepted_ms[verifier.kind] = None if last_ok is None else (last_ok - returned) * 1000
                outcome.tolerated[verifier.kind] = int(message.get("tolerated") or 0)
        return outcome

    def wait_live(self, timeout: float = 10.0, settle: float = 1.5) -> bool:
        """Wait until the plain engine process's feed is live again, then ``settle`` seconds
        more (the servers' state cannot be asked; their listeners reconnect alike)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            counts = self.by_kind(ENGINE).counts()
            if counts and (counts.get("feed") or {}).get("live"):
                time.sleep(settle)
                return True
            time.sleep(0.05)
        return False

    def check_all(self, tokens: list[str]) -> dict[str, list[list[Any]]]:
        """Each verifier's answer to each token (one verification each)."""
        return {verifier.kind: verifier.check(tokens) for verifier in self.verifiers}


@contextmanager
def _environment(**variables: str) -> Iterator[None]:
    """``os.environ`` with ``variables`` set while the block runs (a child started in it
    inherits them)."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# -- cutting the listeners ---------------------------------------------------------------------


def _drill_pids(url: str) -> list[int]:
    """The processes started with ``SESSIONWARD_STORE=url`` (the drill's servers and engine
    verifier): the store URL holds the drill's private schema or prefix."""
    marker = f"SESSIONWARD_STORE={url}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            pids.append(int(entry.name))
    return pids


def _local_ports(pids: list[int], remote_port: int) -> set[int]:
    """Local TCP ports of the connections of ``pids`` to ``remote_port``."""
    inodes: set[str] = set()
    for pid in pids:
        fds = Path(f"/proc/{pid}/fd")
        try:
            links = [os.readlink(fd) for fd in fds.iterdir()]
        except OSError:
            continue
        inodes.update(link[8:-1] for link in links if link.startswith("socket:["))
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            columns = line.split()
            local, remote, inode = columns[1], columns[2], columns[9]
            if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == remote_port:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def cut_listeners(url: str, admin_url: str) -> int:
    """Have the server drop the change-feed listener connection of every process of the
    drill on ``url``; how many it dropped.

    PostgreSQL: ``pg_terminate_backend`` of the drill's backends whose last statement is the
    listener's (``LISTEN`` or its read of ``change_log``). Redis: ``CLIENT KILL`` of the
    drill's connections whose last command is the listener's (``XREAD`` / ``XRANGE``). The
    drill's connections are those whose client port belongs to a process of the drill.
    """
    parts = urlsplit(url)
    pids = _drill_pids(url)
    if parts.scheme.startswith("postgres"):
        import psycopg

        ports = _local_ports(pids, parts.port or 5432)
        with psycopg.connect(admin_url, autocommit=True) as admin:
            rows = admin.execute(
                "WITH targets AS MATERIALIZED (SELECT pid FROM pg_stat_activity "
                "WHERE client_port = ANY(%s) AND pid <> pg_backend_pid() "
                "AND (query ILIKE 'LISTEN %%' OR query LIKE '%%FROM change_log WHERE seq >%%')) "
                "SELECT pid FROM targets WHERE pg_terminate_backend(pid)",
                (sorted(ports),),
            ).fetchall()
        return len(rows)
    import redis

    ports = _local_ports(pids, parts.port or 6379)
    server = redis.Redis.from_url(admin_url)
    try:
        killed = 0
        for client in server.client_list():
            port = int(str(client["addr"]).rsplit(":", 1)[1])
            if port in ports and client.get("cmd") in ("xread", "xrange"):
                killed += int(server.client_kill_filter(_id=str(client["id"])))
        return killed
    finally:
        server.close()


@contextmanager
def cutting(url: str, admin_url: str, every: float) -> Iterator[list[int]]:
    """Cut the drill's listeners every ``every`` seconds until the block ends; yields a list
    that receives how many connections each cut dropped."""
    cuts: list[int] = []
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every):
            cuts.append(cut_listeners(url, admin_url))

    thread = threading.Thread(target=run, name="drill-cutter", daemon=True)
    thread.start()
    try:
        yield cuts
    finally:
        stop.set()
        thread.join(30)


# -- statistics ------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values`` (``fraction`` in [0, 1])."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summary(values: list[float]) -> str:
    """``p50 / p99 / max`` in ms, or ``-`` for no values."""
    if not values:
        return "-"
    return f"{percentile(values, 0.5):.1f} / {percentile(values, 0.99):.1f} / {max(values):.1f}"


def latencies(outcomes: list[Outcome]) -> dict[str, list[float]]:
    """The latencies each verifier kind saw (refusals only)."""
    return {
        kind: [ms for outcome in outcomes if (ms := outcome.latency_ms.get(kind)) is not None]
        for kind in KINDS
    }


def wrong(
    outcomes: list[Outcome], expected: str, bound_ms: float
) -> list[tuple[int, str, str | None, float | None]]:
    """``(change index, verifier kind, error, latency)`` of every refusal that is missing,
    later than ``bound_ms`` or not ``expected``."""
    return [
        (index, kind, outcome.error.get(kind), outcome.latency_ms.get(kind))
        for index, outcome in enumerate(outcomes)
        for kind in KINDS
        if outcome.error.get(kind) != expected or (outcome.latency_ms.get(kind) or 0.0) > bound_ms
    ]


def table(title: str, by_store: dict[str, list[Outcome]], expected: str, bound_ms: float = 1000.0) -> str:
    """A Markdown table: one row per store; the number of changes, how many refusals were
    missing, wrong or later than ``bound_ms``, p50 / p99 / max per verifier kind and over all,
    and the median duration of the call itself."""
    lines = [
        f"#### {title}",
        "",
        "ms from the call's return to the first refusal, p50 / p99 / max (negative: refused"
        " before the call returned); the call's own duration, median",
        "",
        f"| store | changes | missing, wrong or > {bound_ms:.0f} ms | "
        + " | ".join(KINDS)
        + " | all | call |",
        "|---|---|---|" + "---|" * (len(KINDS) + 2),
    ]
    for store, outcomes in by_store.items():
        by_kind = latencies(outcomes)
        every = [value for kind in KINDS for value in by_kind[kind]]
        cells = [summary(by_kind[kind]) for kind in KINDS]
        bad = len(wrong(outcomes, expected, bound_ms))
        call = percentile([outcome.call_ms for outcome in outcomes], 0.5) if outcomes else 0.0
        row = f"| {store} | {len(outcomes)} | {bad} | " + " | ".join(cells)
        lines.append(row + f" | {summary(every)} | {call:.1f} |")
    return "\n".join(lines)

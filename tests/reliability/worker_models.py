"""Real servers in several worker models, and clients that reach every worker (not a test
module; used by ``test_feed_worker_models.py``).

:data:`MODELS` lists the worker models: the server command of each (on 127.0.0.1), how
many worker processes it runs and how many threads each. The servers run the entry points
of ``worker_apps.py``: every response says which process and thread answered and what its
change feed looks like (the ``x-worker`` header, decoded into :class:`Answer.worker`).

:class:`Server` starts one, :class:`Pollers` verify one access token through several
client threads at once (keep-alive connections, each re-dialled every
:data:`REDIAL_EVERY` requests so that every worker gets some) and record every answer.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from support.processes import TESTS, child_environment, config_environment, free_port

from sessionward import Config

REDIAL_EVERY = 25
"""Requests a client thread sends on one connection before it dials a new one."""
ENTRY_POINTS = "reliability.worker_apps"


def uvicorn_worker_class() -> str | None:
    """Gunicorn's worker class for uvicorn, when installed: ``uvicorn_worker.UvicornWorker``
    (the ``uvicorn-worker`` package) or the deprecated ``uvicorn.workers.UvicornWorker``."""
    if importlib.util.find_spec("uvicorn_worker") is not None:
        return "uvicorn_worker.UvicornWorker"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import uvicorn.workers  # noqa: F401
    except ImportError:
        return None
    return "uvicorn.workers.UvicornWorker"


@dataclass(frozen=True)
class WorkerModel:
    """One way of serving the app: ``arguments(port)`` is the server's command line after
    ``python -m``."""

    name: str
    workers: int
    threads: int
    arguments: Callable[[int], list[str]]
    warm_master: bool = False
    """The app's engine is started (listener included) where the app is loaded: with
    ``--preload``, in the master before it forks the workers."""
    available: Callable[[], str | None] = lambda: None
    """Why the model cannot run here (``None``: it can)."""


def _gunicorn(*options: str) -> Callable[[int], list[str]]:
    def arguments(port: int) -> list[str]:
        return [
            "gunicorn",
            "--chdir",
            str(TESTS),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            *options,
        ]

    return arguments


def _uvicorn_workers(port: int) -> list[str]:
    return [
        "uvicorn",
        "--app-dir",
        str(TESTS),
        "--factory",
        f"{ENTRY_POINTS}:fastapi_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "2",
        "--log-level",
        "warning",
    ]


def _gunicorn_uvicorn(port: int) -> list[str]:
    worker_class = uvicorn_worker_class() or "uvicorn.workers.UvicornWorker"
    return _gunicorn("-k", worker_class, "-w", "2", "--preload", f"{ENTRY_POINTS}:fastapi_app()")(port)


MODELS = (
    WorkerModel(
        "gunicorn-gthread",
        workers=2,
        threads=4,
        arguments=_gunicorn("-k", "gthread", "-w", "2", "--threads", "4", f"{ENTRY_POINTS}:flask_app()"),
    ),
    WorkerModel(
        "gunicorn-sync-preload",
        workers=3,
        threads=1,
        arguments=_gunicorn("-k", "sync", "-w", "3", "--preload", f"{ENTRY_POINTS}:flask_app()"),
        warm_master=True,
    ),
    WorkerModel("uvicorn-workers", workers=2, threads=1, arguments=_uvicorn_workers),
    WorkerModel(
        "gunicorn-uvicorn-worker-preload",
        workers=2,
        threads=1,
        arguments=_gunicorn_uvicorn,
        available=lambda: None if uvicorn_worker_class() else "no uvicorn worker class for gunicorn",
    ),
)
"""The worker models covered: gunicorn's threaded worker (two processes of four threads,
each process's threads verifying on one engine), gunicorn's sync worker with ``--preload``
(three processes forked from a master whose engine, listener included, is already started),
uvicorn's own ``--workers`` (processes spawned, not forked) and gunicorn with uvicorn's
worker class and ``--preload`` (an async engine created in the master, started in each
worker)."""


class Server:
    """One server of ``model`` on 127.0.0.1 (a context manager); ``base`` is its URL."""

    def __init__(self, model: WorkerModel, config: Config, logs: Path) -> None:
        self.model = model
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.dir = logs / model.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / "server.log"
        env = {
            **config_environment(config),
            "PYTHONUNBUFFERED": "1",
            "SESSIONWARD_TEST_WORKER_DIR": str(self.dir),
        }
        if model.warm_master:
            env["SESSIONWARD_TEST_WARM_START"] = "1"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", *model.arguments(self.port)],
            env=child_environment(env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.seen_pids: set[int] = set()

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base, timeout=5) as probe:
            while True:
                try:
                    if probe.get("/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{self.model.name} did not start:\n{self.log()}")
                time.sleep(0.05)

    def loaded(self) -> dict[str, Any] | None:
        """What the app factory wrote where the app was loaded in this server's master
        (``worker_apps``: only with a warm start), or ``None``."""
        path = self.dir / f"loaded-{self.pid}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def kill_worker(self, pid: int) -> None:
        """SIGKILL one worker (a child of this server, seen answering)."""
        assert pid in self.seen_pids and pid != self.pid, pid
        os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        workers = _children(self.pid)
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        # Workers outliving their master: ended by pid, if that pid is still the same process.
        for pid, started in workers.items():
            if _start_time(pid) == started:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self._log.close()

    def __enter__(self) -> Server:
        try:
            self.wait_ready()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _start_time(pid: int) -> str | None:
    """The start time of process ``pid`` (``/proc``; ``None`` when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _children(pid: int) -> dict[int, str | None]:
    """The child processes of ``pid`` and their start times."""
    try:
        listed = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return {}
    return {int(child): _start_time(int(child)) for child in listed}


@dataclass(frozen=True, slots=True)
class Answer:
    """One request: when it was sent and answered (CLOCK_MONOTONIC), the status (0: a
    transport error) and the ``x-worker`` description (``None`` without one)."""

    label: str
    sent: float
    received: float
    status: int
    worker: dict[str, Any] | None

    @property
    def described(self) -> dict[str, Any]:
        """The ``x-worker`` description (an answer without one has none to give)."""
        if self.worker is None:
            raise AssertionError(f"no x-worker header in {self}")
        return self.worker


class Pollers:
    """``count`` client threads, each verifying the current token (``GET /protected``,
    ``Authorization: Bearer``) in a loop; every answer goes to :attr:`answers`."""

    def __init__(self, base: str, count: int) -> None:
        self.base = base
        self.answers: list[Answer] = []
        self._target: tuple[str, str] | None = None
        self._closed = False
        self._wake = threading.Condition()
        self._threads = [
            threading.Thread(target=self._run, name=f"poller-{index}", daemon=True) for index in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def poll(self, label: str | None, token: str | None = None) -> None:
        """Verify ``token`` from now on (its answers labelled ``label``); ``None``: pause."""
        with self._wake:
            self._target = None if label is None or token is None else (label, token)
            self._wake.notify_all()

    def _run(self) -> None:
        client: httpx.Client | None = None
        sent_on_client = 0
        try:
            while True:
                with self._wake:
                    while self._target is None and not self._closed:
                        self._wake.wait()
                    if self._closed:
                        return
                    label, token = self._target  # type: ignore[misc]
                if client is None or sent_on_client >= REDIAL_EVERY:
                    if client is not None:
                        client.close()
                    client = httpx.Client(base_url=self.base, timeout=10)
                    sent_on_client = 0
                sent = time.monotonic()
                try:
                    response = client.get(
                        "/protected", headers={"authorization": f"Bearer {token}", "st-auth-mode": "header"}
                    )
                except httpx.TransportError:
                    self.answers.append(Answer(label, sent, time.monotonic(), 0, None))
                    client.close()
                    client = None
                    time.sleep(0.01)
                    continue
                received = time.monotonic()
                sent_on_client += 1
                header = response.headers.get("x-worker")
                worker = json.loads(header) if header else None
                self.answers.append(Answer(label, sent, received, response.status_code, worker))
        finally:
            if client is not None:
                client.close()

    def of(self, label: str) -> list[Answer]:
        """The answers labelled ``label`` so far."""
        return [answer for answer in list(self.answers) if answer.label == label]

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(15)


@contextmanager
def pollers(base: str, count: int) -> Iterator[Pollers]:
    made = Pollers(base, count)
    try:
        yield made
    finally:
        made.close()

"""A private ``redis-server`` on a free port, for tests that flush, squeeze, pause or restart it.

Tests doing that must not touch the shared server other test runs use. :class:`RedisServer`
runs Debian's ``redis-server`` in a directory of the test's own, with or without persistence,
and can be stopped and started again on the same port (a Redis restart).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from support.services import skip_or_fail

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
_START_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process on a fixed port.

    ``persistent``: append-only file fsynced on every write (nothing acknowledged is lost
    by a restart); otherwise neither snapshots nor AOF (a restart empties the server).
    """

    def __init__(self, directory: Path, *, persistent: bool = False) -> None:
        self.directory = directory
        self.persistent = persistent
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)

    def _command(self) -> list[str]:
        if self.persistent:
            persistence = ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            persistence = ["--appendonly", "no"]
        return [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            *persistence,
        ]

    def start(self) -> float:
        """Start the server; return the ``time.monotonic()`` at which it accepted a connection."""
        process = self.process = subprocess.Popen(
            self._command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return time.monotonic()
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.005)

    def wait_ready(self) -> None:
        """Wait until the server answers commands (it may still be loading its data)."""
        deadline = time.monotonic() + _START_TIMEOUT
        with self.client() as client:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:  # refused, or LOADING its data
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)

    def stop(self) -> None:
        """SIGTERM, as a service manager stops Redis (it writes its AOF and exits)."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def kill(self) -> None:
        """SIGKILL, a crash: nothing is written on the way out (with ``persistent``, every
        acknowledged write is in the append-only file already)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@contextmanager
def private_redis_server(directory: Path, *, persistent: bool = False) -> Iterator[RedisServer]:
    """A started :class:`RedisServer`, stopped afterwards; skip (or fail) without the binary."""
    if not shutil.which(REDIS_SERVER):
        skip_or_fail(f"redis-server binary not found ({REDIS_SERVER})")
    server = RedisServer(directory, persistent=persistent)
    server.start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()

"""The test side of ``reliability_worker.py``: one worker process and its JSON lines."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from reliability.latency_store import LatencyPlan
from support.processes import child_environment

WORKER = Path(__file__).with_name("reliability_worker.py")
REPLY_TIMEOUT = 60.0


class Worker:
    """One worker process and a reader thread collecting its JSON lines."""

    def __init__(
        self, url: str, driver: str, log: Path, options: dict[str, Any], latency: LatencyPlan | None = None
    ) -> None:
        self.driver = driver
        self.log_path = log
        self._log = log.open("wb")
        argv = [sys.executable, str(WORKER), url, driver, json.dumps(options)]
        if latency is not None:
            argv.append(json.dumps(latency.to_json()))
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=child_environment(),  # the worker imports ``support`` and ``reliability``
        )
        self.replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.progress: list[tuple[str, str]] = []
        self._next_id = 0
        self._reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[bytes] | None) -> None:
        assert stream is not None
        for raw in stream:
            if not raw.endswith(b"\n"):
                break  # a line cut short by SIGKILL
            message = json.loads(raw)
            if "progress" in message:
                self.progress.append(tuple(message["progress"]))
            else:
                self.replies.put(message)
        self.replies.put(None)

    def send(self, op: str, **fields: Any) -> int:
        self._next_id += 1
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps({"id": self._next_id, "op": op, **fields}) + "\n").encode())
        self.process.stdin.flush()
        return self._next_id

    def receive(self, ident: int) -> dict[str, Any]:
        try:
            reply = self.replies.get(timeout=REPLY_TIMEOUT)
        except queue.Empty:
            raise AssertionError(f"worker {self.driver} did not answer: {self.stderr()}") from None
        assert reply is not None, f"worker {self.driver} died: {self.stderr()}"
        assert reply["id"] == ident
        return reply

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        return self.receive(self.send(op, **fields))

    def stderr(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-3000:]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self._reader.join(timeout=10)

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.request("close")
            except (AssertionError, OSError):
                self.process.kill()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        self._reader.join(timeout=10)
        self._log.close()

"""A plain engine process for the change-feed drills (not a test module).

Usage: ``python feed_verifier.py STORE_URL CONFIG_JSON``. The process opens its own
``SessionWard`` on its own store connections, wrapped in a :class:`FeedRecordingStore` that
counts every store call, then verifies one access token at a time in a tight loop and
answers JSON commands, one per line on stdin, with JSON lines on stdout:

- ``{"cmd": "watch", "id": n, "token": access token, "ready": k, "tolerate": [class names]}``:
  verify ``token`` over and over. After ``k`` successful verifications it prints
  ``{"event": "ready", "id": n}``; at the first failure whose class is not in ``tolerate``
  (optional; those are counted and the loop goes on) ``{"event": "fail", "id": n, "at":
  CLOCK_MONOTONIC seconds, "error": class name, "message": ..., "verifies": verifications
  of this watch, "last_ok": when the last successful verification began (or null),
  "tolerated": how many}`` and stops verifying (CLOCK_MONOTONIC is shared by every process
  of the machine);
- ``{"cmd": "check", "id": n, "tokens": [...]}``: verify each token once; answers
  ``{"event": "checked", "id": n, "results": [["ok", payload] | ["err", class name]]}``;
- ``{"cmd": "counts", "id": n}``: ``{"event": "counts", "id": n, "calls": {method: count},
  "verifies": total verifications, "feed": the engine's change-feed state or null}``;
- ``{"cmd": "reset", "id": n}``: zero the counters (answers ``{"event": "reset"}``);
- end of input: close the engine and exit.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
import time
from typing import Any

from support.stores import RecordingStore

from sessionward import Config, SessionWard
from sessionward.stores.urls import open_store

_output_lock = threading.Lock()


def emit(message: dict[str, Any]) -> None:
    line = json.dumps(message) + "\n"
    with _output_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


class FeedRecordingStore(RecordingStore):
    """A :class:`RecordingStore` that also offers the change-feed operations by name (so that
    a protocol check by attribute finds them); the listener's own reads run on its own
    connection and are not counted, the feed's operations called through the store are."""

    def changes_since(self, seq: int, limit: int = 1000) -> Any:
        return self.__getattr__("changes_since")(seq, limit)

    def last_change_seq(self) -> Any:
        return self.__getattr__("last_change_seq")()

    def prune_changes(self, before_ms: int) -> Any:
        return self.__getattr__("prune_changes")(before_ms)

    def change_listener(self, callback: Any, since: int | None = None) -> Any:
        return self.__getattr__("change_listener")(callback, since)


class Verifier:
    """The verification loop and the command reader."""

    def __init__(self, ward: SessionWard, store: FeedRecordingStore) -> None:
        self.ward = ward
        self.store = store
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.watch: tuple[int, str, int, frozenset[str]] | None = None
        self.verifies = 0
        self.done = False

    def feed_state(self) -> Any:
        state_of = getattr(self.ward, "change_feed_state", None)
        if state_of is None:
            return None
        return dataclasses.asdict(state_of())

    def commands(self) -> None:
        for line in sys.stdin:
            if not line.strip():
                continue
            command = json.loads(line)
            kind, ident = command["cmd"], command.get("id")
            if kind == "watch":
                with self.lock:
                    tolerate = frozenset(command.get("tolerate") or ())
                    self.watch = (ident, command["token"], int(command.get("ready", 5)), tolerate)
                self.wake.set()
            elif kind == "check":
                results: list[Any] = []
                for token in command["tokens"]:
                    try:
                        session = self.ward.get_session(token)
                        results.append(["ok", session.jwt_payload])
                    except Exception as exc:
                        results.append(["err", type(exc).__name__])
                emit({"event": "checked", "id": ident, "results": results})
            elif kind == "counts":
                with self.store._lock:
                    calls = dict(self.store.calls)
                emit(
                    {
                        "event": "counts",
                        "id": ident,
                        "calls": calls,
                        "verifies": self.verifies,
                        "feed": self.feed_state(),
                    }
                )
            elif kind == "reset":
                with self.store._lock:
                    self.store.calls.clear()
                    self.store.threads.clear()
                self.verifies = 0
                emit({"event": "reset", "id": ident})
        self.done = True
        self.wake.set()

    def run(self) -> None:
        reader = threading.Thread(target=self.commands, daemon=True)
        reader.start()
        get_session = self.ward.get_session
        while not self.done:
            with self.lock:
                watch = self.watch
            if watch is None:
                self.wake.wait(0.5)
                self.wake.clear()
                continue
            ident, token, ready, tolerate = watch
            seen = tolerated = 0
            last_ok: float | None = None
            while True:
                began = time.monotonic()
                try:
                    get_session(token)
                except Exception as exc:
                    at = time.monotonic()
                    self.verifies += 1
                    if type(exc).__name__ in tolerate:
                        tolerated += 1
                        time.sleep(0.001)  # a store outage: leave the CPU to the others
                        if self.watch is not watch:
                            break
                        continue
                    emit(
                        {
                            "event": "fail",
                            "id": ident,
                            "at": at,
                            "error": type(exc).__name__,
                            "message": str(exc),
                            "verifies": seen + 1,
                            "last_ok": last_ok,
                            "tolerated": tolerated,
                        }
                    )
                    break
                last_ok = began
                self.verifies += 1
                seen += 1
                if seen == ready:
                    emit({"event": "ready", "id": ident})
                if self.watch is not watch:  # a new watch replaces this one
                    break
            with self.lock:
                if self.watch is watch:
                    self.watch = None


def main() -> None:
    url, options = sys.argv[1], json.loads(sys.argv[2])
    store = FeedRecordingStore(open_store(url))
    ward = SessionWard(Config(store=url, **options), store=store)
    try:
        ward.jwks()  # start-up: migrations and keys
        verifier = Verifier(ward, store)
        emit({"event": "started", "feed": verifier.feed_state()})
        verifier.run()
    finally:
        ward.close()
        store.inner.close()


if __name__ == "__main__":
    main()

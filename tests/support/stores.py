"""A store wrapper that records the calls made through it."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

STORE_METHODS = frozenset(
    {
        "migrate",
        "check_schema",
        "insert_session",
        "get_session",
        "promote_returning",
        "delete_sessions",
        "delete_sessions_for_user",
        "delete_other_sessions",
        "get_sessions_for_user",
        "update_auth_time",
        "get_handles_for_user",
        "update_session_data",
        "update_jwt_payload",
        "delete_expired_sessions",
        "load_keys",
        "insert_key_if_absent",
        "delete_keys",
        "close",
    }
)
"""Every method of the ``Store`` and ``AsyncStore`` protocols."""


class RecordingStore:
    """Delegates to a real (sync) store and records every method call, thread-safely.

    ``calls`` counts the calls per method, ``threads`` lists ``(method, thread)`` in call
    order and ``promoted`` counts the compare-and-sets (``promote_returning``) that changed a
    row.
    Pass it as an engine's ``store`` (it is a ``Store`` by duck typing).
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.threads: list[tuple[str, threading.Thread]] = []
        self.promoted = 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:  # recorded before the call: a call that raises counts too
                self.calls[name] += 1
                self.threads.append((name, threading.current_thread()))
            result = attribute(*args, **kwargs)
            if name == "promote_returning" and result.changed:
                with self._lock:
                    self.promoted += 1
            return result

        return call

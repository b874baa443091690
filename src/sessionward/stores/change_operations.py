"""The change-feed operations of a store, written once for the PostgreSQL and Redis stores.

Each of those backends builds its operations as values its stores' ``_run`` performs (SQL
queries for PostgreSQL, script calls for Redis) and follows the log with a listener class of
its own. :class:`ChangeOperations` names the builders and the listener class;
:class:`OperationsChangeFeed` (sync) and :class:`AsyncOperationsChangeFeed` (async), base
classes of the stores, turn them into the
:class:`~sessionward.stores.changes.ChangeFeed` operations (async:
:class:`~sessionward.stores.changes.AsyncChangeFeed`). A listener is the same
thread-based object for both: it needs a connection of its own anyway, and serves every
event loop of the process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from .changes import Change, ChangeCallback, ChangeListener

__all__ = ["AsyncOperationsChangeFeed", "ChangeOperations", "ListenerClass", "OperationsChangeFeed"]

L = TypeVar("L", bound=ChangeListener)
L_co = TypeVar("L_co", bound=ChangeListener, covariant=True)


class ListenerClass(Protocol[L_co]):
    """How the stores make their listener: from their settings, a callback, a starting
    ``seq`` and whether the store is closed."""

    def __call__(
        self,
        settings: Any,
        callback: ChangeCallback,
        since: int | None = None,
        *,
        store_closed: Callable[[], bool] | None = None,
    ) -> L_co: ...


@dataclass(frozen=True, slots=True)
class ChangeOperations(Generic[L]):
    """A backend's builders of the change-feed operations (each returns what its stores'
    ``_run`` performs) and its listener class."""

    changes_since: Callable[[int, int], Any]
    last_change_seq: Callable[[], Any]
    prune_changes: Callable[[int], Any]
    listener: ListenerClass[L]


class OperationsChangeFeed(Generic[L]):
    """The change-feed operations of a synchronous store (a base class of it) whose
    ``_run`` performs the builders of :attr:`change_operations`."""

    change_operations: ChangeOperations[L]

    if TYPE_CHECKING:
        settings: Any
        _closed: bool

        def _run(self, operation: Any) -> Any: ...

    def changes_since(self, seq: int, limit: int = 1000) -> list[Change]:
        """At most ``limit`` changes with a ``seq`` above ``seq``, in ``seq`` order."""
        return list(self._run(self.change_operations.changes_since(seq, limit)))

    def last_change_seq(self) -> int:
        """The highest ``seq`` written so far (0 before the first change)."""
        return int(self._run(self.change_operations.last_change_seq()))

    def prune_changes(self, before_ms: int) -> int:
        """Delete changes written before ``before_ms``; return how many."""
        return int(self._run(self.change_operations.prune_changes(before_ms)))

    def change_listener(self, callback: ChangeCallback, since: int | None = None) -> L:
        """A started listener on this store's log (a connection of its own); it stops for
        good once this store is closed."""
        listener = self.change_operations.listener(
            self.settings, callback, since, store_closed=self._is_closed
        )
        return listener.start()

    def _is_closed(self) -> bool:
        return bool(self._closed)


class AsyncOperationsChangeFeed(Generic[L]):
    """:class:`OperationsChangeFeed` of an async store: the same operations, awaited; the
    same listener."""

    change_operations: ChangeOperations[L]

    if TYPE_CHECKING:
        settings: Any
        _closed: bool

        async def _run(self, operation: Any) -> Any: ...

    async def changes_since(self, seq: int, limit: int = 1000) -> list[Change]:
        """At most ``limit`` changes with a ``seq`` above ``seq``, in ``seq`` order."""
        return list(await self._run(self.change_operations.changes_since(seq, limit)))

    async def last_change_seq(self) -> int:
        """The highest ``seq`` written so far (0 before the first change)."""
        return int(await self._run(self.change_operations.last_change_seq()))

    async def prune_changes(self, before_ms: int) -> int:
        """Delete changes written before ``before_ms``; return how many."""
        return int(await self._run(self.change_operations.prune_changes(before_ms)))

    def change_listener(self, callback: ChangeCallback, since: int | None = None) -> L:
        """A started listener on this store's log (see :meth:`OperationsChangeFeed.change_listener`)."""
        listener = self.change_operations.listener(
            self.settings, callback, since, store_closed=self._is_closed
        )
        return listener.start()

    def _is_closed(self) -> bool:
        return bool(self._closed)

"""The change feed of :class:`~sessionward.stores.threaded.ThreadedAsyncStore`: the sync
store's feed operations run on the worker thread; its listener is the sync store's own."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Store
from .changes import Change, ChangeCallback, ChangeFeed, ChangeListener

__all__ = ["ThreadedChangeFeed"]


class ThreadedChangeFeed:
    """The :class:`~sessionward.stores.changes.AsyncChangeFeed` operations of
    :class:`~sessionward.stores.threaded.ThreadedAsyncStore` (a base class of it), for a
    wrapped store that offers :class:`~sessionward.stores.changes.ChangeFeed`."""

    if TYPE_CHECKING:
        sync_store: Store

        async def _call(self, name: str, *args: Any) -> Any: ...

    async def changes_since(self, seq: int, limit: int = 1000) -> list[Change]:
        """At most ``limit`` changes with a ``seq`` above ``seq``, in ``seq`` order."""
        return list(await self._call("changes_since", seq, limit))

    async def last_change_seq(self) -> int:
        """The highest ``seq`` in the log (0 when it is empty)."""
        return int(await self._call("last_change_seq"))

    async def prune_changes(self, before_ms: int) -> int:
        """Delete changes written before ``before_ms``; return how many."""
        return int(await self._call("prune_changes", before_ms))

    def change_listener(self, callback: ChangeCallback, since: int | None = None) -> ChangeListener:
        """The wrapped store's started listener (it runs on a thread of its own)."""
        feed: ChangeFeed = self.sync_store  # type: ignore[assignment]
        return feed.change_listener(callback, since)

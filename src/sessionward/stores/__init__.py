"""Session stores, chosen by URL: :func:`open_store` (sync) and :func:`open_async_store`.

``sqlite:///…`` (standard library), ``postgresql://…`` (extra ``[postgres]``) and
``redis://…`` (extra ``[redis]``); see ``docs/stores.md``.
"""

from .base import AsyncStore, SessionRow, Store, StoredKey
from .urls import open_async_store, open_store

__all__ = ["AsyncStore", "SessionRow", "Store", "StoredKey", "open_async_store", "open_store"]

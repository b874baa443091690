"""Session stores, chosen by URL: see :func:`sessionward.stores.urls.open_store`."""

from .base import AsyncStore, SessionRow, Store, StoredKey

__all__ = ["AsyncStore", "SessionRow", "Store", "StoredKey"]

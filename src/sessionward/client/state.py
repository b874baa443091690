"""The session state of one :class:`~sessionward.client.SessionAuth`: the stored tokens and
a generation number that changes with every change of them.

The generation is how concurrent requests share one refresh: a request notes it when it
leaves; when the answer is "session expired", the request takes the refresh lock and
compares: a different generation means someone else already refreshed (or signed in, or
signed out) meanwhile, so the request retries with what is stored now instead of
refreshing again. Every method is thread-safe and never blocks on the network.
"""

from __future__ import annotations

import threading

import httpx

from .storage import TokenFile
from .tokens import StoredTokens, TokenUpdate, origin_of, token_update

__all__ = ["TokenState"]


class TokenState:
    """Stored tokens, their generation and the optional token file behind them."""

    def __init__(self, file: TokenFile | None) -> None:
        self._lock = threading.Lock()
        self._file = file
        self._tokens: StoredTokens | None = None
        self._generation = 0
        if file is not None:
            self._tokens = file.read_if_changed()[1]

    @property
    def file(self) -> TokenFile | None:
        """The token file, or ``None`` when the tokens live in memory only."""
        return self._file

    def snapshot(self) -> tuple[StoredTokens | None, int]:
        """The tokens and their generation, after reading the token file again if it changed."""
        with self._lock:
            self._sync_from_file()
            return self._tokens, self._generation

    def apply_response(self, response: httpx.Response) -> None:
        """Store what ``response``'s headers say about the session (new tokens, or its end).

        Tokens are bound to the origin that issued them: an answer from another origin
        cannot replace or remove a session it did not issue.
        """
        update = token_update(response.headers)
        if update is not None:
            self._apply(update, origin_of(response.request.url))

    def clear(self) -> None:
        """Forget the session and delete the token file (whatever it holds)."""
        with self._lock:
            if self._file is not None:
                self._file.write(None)
            if self._tokens is not None:
                self._tokens = None
                self._generation += 1

    def _apply(self, update: TokenUpdate, origin: str) -> None:
        with self._lock:
            self._sync_from_file()
            current = self._tokens
            if current is not None and current.origin != origin:
                return
            if update.clear:
                self._set(None)
                return
            access = update.access_token or (current.access_token if current else None)
            if access is None:
                return  # a front-token without any session: nothing to send
            self._set(
                StoredTokens(
                    origin,
                    access,
                    update.refresh_token or (current.refresh_token if current else None),
                    update.front_token or (current.front_token if current else None),
                )
            )

    def _set(self, tokens: StoredTokens | None) -> None:
        if tokens == self._tokens:
            return
        if self._file is not None:
            self._file.write(tokens)
        self._tokens = tokens
        self._generation += 1

    def _sync_from_file(self) -> None:
        if self._file is None:
            return
        changed, tokens = self._file.read_if_changed()
        if changed and tokens != self._tokens:
            self._tokens = tokens
            self._generation += 1

"""Flows: the engine's store-touching operations, written once for sync and async code.

A flow is a generator that yields :class:`StoreCall` values and receives each call's
result; it decides, a driver performs (the pattern of httpx's auth flows).
:class:`~sessionward.SessionWard` drives flows with a synchronous store and
:class:`~sessionward.AsyncSessionWard` with an asynchronous one, awaiting each call.

Flows ask for store calls through :func:`call`, which names the method of the
:class:`~sessionward.stores.base.Store` protocol itself: mypy checks the arguments against
the protocol's signature and types the result, so a flow cannot ask a store for something
it does not offer.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

from ..stores.base import Store

__all__ = ["Flow", "StoreCall", "call"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StoreCall:
    """A store operation a flow asks its driver to perform: a method name and arguments."""

    method: str
    args: tuple[Any, ...] = ()


Flow = Generator[StoreCall, Any, T]
"""A generator yielding store calls, receiving their results and returning a ``T``."""


def call(method: Callable[Concatenate[Store, P], R], *args: P.args, **kwargs: P.kwargs) -> Flow[R]:
    """Ask the driver to perform ``method`` (a :class:`Store` protocol method) with
    ``args``; evaluates to its result (``yield from call(Store.get_session, handle)``)."""
    if kwargs:
        raise TypeError("store calls take positional arguments only")
    result: R = yield StoreCall(method.__name__, args)
    return result

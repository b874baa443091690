"""Flows: operations written once for sync and async code.

A flow is a generator that yields :class:`Call` values and receives each call's result;
it decides, a driver performs (the pattern of httpx's auth flows). :func:`perform` drives
a flow against a synchronous target and :func:`aperform` against an asynchronous one
(same method names, awaited). The engine's flows target a store
(:class:`~sessionward.SessionWard` drives them with a sync store,
:class:`~sessionward.AsyncSessionWard` with an async one); the request-level flows of
:mod:`sessionward.session` target an engine.

Flows ask for calls through :func:`call` (a store method) or :func:`engine_call` (an
engine method), which name the method of the protocol or class itself: mypy checks the
arguments against its signature and types the result, so a flow cannot ask its target
for something it does not offer.

Flows report what happened by handing events to the engine's event bus
(``core.events.emit``, an in-process call, not I/O) right after the store call that made
the event true has returned, so an event never announces a write that failed; the bus
never raises into the flow.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Concatenate, NamedTuple, ParamSpec, TypeVar

from ..stores.base import Store

if TYPE_CHECKING:
    from .sync import SessionWard

__all__ = ["Call", "Flow", "aperform", "call", "engine_call", "perform"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class Call(NamedTuple):
    """An operation a flow asks its driver to perform: a method name and arguments (a
    named tuple: one is built per store call, where a frozen dataclass costs more)."""

    method: str
    args: tuple[Any, ...] = ()


Flow = Generator[Call, Any, T]
"""A generator yielding calls, receiving their results and returning a ``T``."""


def _ask(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Flow[Any]:
    if kwargs:
        raise TypeError("flow calls take positional arguments only")
    return (yield Call(name, args))


def call(method: Callable[Concatenate[Store, P], R], *args: P.args, **kwargs: P.kwargs) -> Flow[R]:
    """Ask the driver to perform ``method`` (a :class:`Store` protocol method) with
    ``args``; evaluates to its result (``yield from call(Store.get_session, handle)``)."""
    # The yield of _ask written out: one generator per store call, not two.
    if kwargs:
        raise TypeError("flow calls take positional arguments only")
    result: R = yield Call(method.__name__, args)
    return result


def engine_call(
    method: Callable[Concatenate[SessionWard, P], R], *args: P.args, **kwargs: P.kwargs
) -> Flow[R]:
    """Ask the driver to perform an engine method (named on
    :class:`~sessionward.SessionWard`; :class:`~sessionward.AsyncSessionWard` has the same
    methods as coroutines); evaluates to its result."""
    result: R = yield from _ask(method.__name__, args, kwargs)
    return result


def perform(target: object, flow: Flow[T]) -> T:
    """Run ``flow``, performing each call on ``target`` synchronously."""
    try:
        request = next(flow)
        while True:
            try:
                result = getattr(target, request.method)(*request.args)
            except BaseException as exc:
                request = flow.throw(exc)
            else:
                request = flow.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def aperform(target: object, flow: Flow[T]) -> T:
    """Run ``flow``, awaiting each call on ``target``."""
    try:
        request = next(flow)
        while True:
            try:
                result = await getattr(target, request.method)(*request.args)
            except BaseException as exc:
                request = flow.throw(exc)
            else:
                request = flow.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]

"""An engine of either driver behind plain calls, for tests that run one body against the
sync and the async engine."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from sessionward import AsyncSessionWard, SessionWard


class Driven:
    """An engine of either driver behind plain calls: coroutine methods of an async engine
    run on the test's event loop; plain methods (``subscribe``) are called as they are."""

    def __init__(self, engine: SessionWard | AsyncSessionWard, runner: asyncio.Runner | None) -> None:
        self.engine = engine
        self.runner = runner
        self.core = engine._core

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.engine, name)
        runner = self.runner
        if runner is None or not inspect.iscoroutinefunction(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            return runner.run(method(*args, **kwargs))

        return call

    def close(self) -> None:
        if isinstance(self.engine, AsyncSessionWard):
            assert self.runner is not None
            self.runner.run(self.engine.aclose())
        else:
            self.engine.close()

"""Helpers shared by the test suites: fake clocks, store wrappers, session rows, isolated
store URLs per backend, drivers that hide sync/async, and a private Redis server.

``tests/`` is on ``sys.path`` (``pythonpath`` in ``pyproject.toml``), so test modules import
these as ``from support.clock import FakeClock``; mypy finds them through ``mypy_path``.
"""

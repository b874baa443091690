"""Fixtures of the real-browser suite (shared pieces: ``browser_env.py``).

Chromium, Playwright, node and npm are services in the sense of ``skip_or_fail``: their
absence skips the tests with the reason, or fails them under SESSIONWARD_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.services import skip_or_fail

from browser import sdk
from browser.browser_env import (
    CHROMIUM,
    EXAMPLE_SITE,
    JS_ASSETS,
    ClientPage,
    PageServer,
    Profile,
    ServerPool,
    require_client,
)

# -- browser -------------------------------------------------------------------------------------


# Module scope, not session: while Playwright's sync API runs, its event loop counts as
# running in the main thread, which breaks later tests that call async code from sync code
# (asgiref's AsyncToSync in Flask's async views).
@pytest.fixture(scope="module")
def browser(request: pytest.FixtureRequest) -> Iterator[Any]:
    if not CHROMIUM.exists():
        skip_or_fail(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright (Python) is not installed: pip install -e .[dev]")
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--host-resolver-rules=MAP *.{EXAMPLE_SITE} 127.0.0.1",
            ],
        )
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser profile (no cookies, no storage) per test."""
    ctx = browser.new_context()
    ctx.set_default_timeout(20_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def new_context(browser: Any) -> Iterator[Any]:
    """Makes more fresh browser profiles in a test (a second user beside ``context``)."""
    made: list[Any] = []

    def make() -> Any:
        ctx = browser.new_context()
        ctx.set_default_timeout(20_000)
        made.append(ctx)
        return ctx

    try:
        yield make
    finally:
        for ctx in made:
            ctx.close()


# -- SuperTokens SDK bundles -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def sdk_assets(request: pytest.FixtureRequest) -> Path:
    """The directory of the supertokens-website bundles (npm install + esbuild on first use)."""
    try:
        for version in sdk.SDK_VERSIONS:
            sdk.bundle(version)
    except sdk.ToolMissingError as error:
        skip_or_fail(str(error))
    return sdk.BUILD


@pytest.fixture(scope="session")
def current_sdk_assets(request: pytest.FixtureRequest) -> Path:
    """The bundles of today's SDKs, supertokens-website 20.x and supertokens-web-js."""
    try:
        for client in sdk.CURRENT_CLIENTS:
            sdk.build(sdk.BUNDLES[client])
    except sdk.ToolMissingError as error:
        skip_or_fail(str(error))
    return sdk.BUILD


# -- servers ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def assets() -> list[Path]:
    return [JS_ASSETS, sdk.BUILD]


@pytest.fixture(scope="session")
def page_server(assets: list[Path]) -> Iterator[PageServer]:
    server = PageServer(assets)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def servers(
    assets: list[Path], page_server: PageServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerPool]:
    pool = ServerPool(assets, [page_server.origin], tmp_path_factory.mktemp("browser-stores"))
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def open_page(request: pytest.FixtureRequest, context: Any, servers: ServerPool) -> Iterator[Any]:
    pages: list[ClientPage] = []

    def opener(
        client: str,
        framework: str,
        origin: str | None = None,
        *,
        profile: Any = None,
        init: dict[str, Any] | None = None,
        **options: Any,
    ) -> ClientPage:
        """A tab of ``client`` on the ``framework`` server with config ``options``, in the
        test's browser profile (or ``profile``, a context of ``new_context``)."""
        require_client(request, client)
        server = servers.get(framework, **options)
        page = ClientPage((profile or context).new_page(), server, client).open(origin, init)
        server.reset()
        pages.append(page)
        return page

    yield opener
    for page in pages:
        assert not page.errors, f"uncaught errors in the page: {page.errors}"


@pytest.fixture(scope="module")
def profiles(browser: Any) -> Iterator[list[Profile]]:
    """Browser profiles kept by the module's tests (``open_profiles``), each wiped after use."""
    made: list[Profile] = []
    try:
        yield made
    finally:
        for profile in made:
            profile.close()
        made.clear()


@pytest.fixture
def open_profiles(
    request: pytest.FixtureRequest, browser: Any, profiles: list[Profile], servers: ServerPool
) -> Iterator[Any]:
    """Opens tabs of one client in ``count`` browser profiles, loading side by side;
    arguments as ``open_page``'s. The profiles are the module's, wiped after each test (no
    cookies, no storage): a new context per tab per test costs more than the test's
    browser work."""
    pages: list[ClientPage] = []
    used: list[Profile] = []

    def opener(
        client: str,
        framework: str,
        origin: str | None = None,
        *,
        count: int,
        init: dict[str, Any] | None = None,
        **options: Any,
    ) -> list[ClientPage]:
        require_client(request, client)
        server = servers.get(framework, **options)
        while len(profiles) < len(used) + count:
            profiles.append(Profile(browser))
        taken = profiles[len(used) : len(used) + count]
        used.extend(taken)
        tabs = [ClientPage(profile.page, server, client).start_loading(origin) for profile in taken]
        pages.extend(tabs)
        for tab in tabs:
            tab.initialise(init)
        server.reset()
        return tabs

    yield opener
    errors = {page.client: page.errors for page in pages if page.errors}
    for page in pages:
        page.detach()
    for profile in used:
        profile.wipe()
    assert not errors, f"uncaught errors in the page: {errors}"

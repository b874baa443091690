"""The SuperTokens frontend SDKs, installed from the npm registry and bundled for the browser
with esbuild, into a git-ignored cache (``tests/browser/.npm-cache/``).

Two generations: ``supertokens-website`` 4.2.0 and 5.0.10 (the 2020 protocol, global
``supertokens``), and today's ``supertokens-website`` 20.1.6 (global ``supertokens``) and
``supertokens-web-js`` 0.16.0 with its session recipe (global ``supertokensWebJs`` with
``SuperTokens`` and ``Session``).

Nothing of the packages is committed: :func:`build` runs ``npm install`` (with a cold cache
too) and ``esbuild`` the first time a bundle is asked for, then reuses the bundle.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

CACHE = Path(__file__).resolve().parent / ".npm-cache"
BUILD = CACHE / "build"
SDK_VERSIONS = ("4.2.0", "5.0.10")
# The 4.x bundle entry also exports an axios flavour that imports axios (a peer dependency).
AXIOS = "axios@0.21.4"
ESBUILD = "esbuild@0.25.12"
# The packages read process.env at run time (a Node-ism the browser lacks).
PROCESS_SHIM = "export const process = { env: {} };\n"
# supertokens-web-js 0.16.0 asks for supertokens-website ^20.1.5; pinned to the newest 20.x
# so that the bundle does not change under the tests.
WEBSITE_CURRENT = "20.1.6"
WEB_JS = "0.16.0"
WEB_JS_ENTRY = (
    'export { default as SuperTokens } from "supertokens-web-js";\n'
    'export * as Session from "supertokens-web-js/recipe/session";\n'
)


class ToolMissingError(RuntimeError):
    """node or npm is not installed."""


@dataclasses.dataclass(frozen=True)
class Bundle:
    """One browser bundle: the npm packages it is made of, its entry and its global name."""

    client: str  # the client id of the test pages (harness.CLIENTS)
    file_name: str  # the bundle, in BUILD
    project: str  # the npm project directory, in CACHE
    pinned: tuple[tuple[str, str], ...]  # (package, version) installed exactly
    extra: tuple[str, ...]  # other npm specs to install
    entry: str  # relative to the project: a module of a package, or a generated file
    global_name: str
    entry_source: str | None = None  # the generated entry's text

    def specs(self) -> list[str]:
        return [f"{name}@{version}" for name, version in self.pinned] + list(self.extra)


def _website(version: str, *extra: str) -> Bundle:
    return Bundle(
        client=f"st-{version}",
        file_name=bundle_name(version),
        project=f"supertokens-website-{version}",
        pinned=(("supertokens-website", version),),
        extra=(*extra, ESBUILD),
        entry="node_modules/supertokens-website/lib/build/bundleEntry.js",
        global_name="supertokens",
    )


def bundle_name(version: str) -> str:
    return f"supertokens-website-{version}.js"


BUNDLES = {
    bundle.client: bundle
    for bundle in (
        *(_website(version, AXIOS) for version in SDK_VERSIONS),
        _website(WEBSITE_CURRENT),
        Bundle(
            client=f"webjs-{WEB_JS}",
            file_name=f"supertokens-web-js-{WEB_JS}.js",
            project=f"supertokens-web-js-{WEB_JS}",
            pinned=(("supertokens-web-js", WEB_JS), ("supertokens-website", WEBSITE_CURRENT)),
            extra=(ESBUILD,),
            entry="entry.js",
            global_name="supertokensWebJs",
            entry_source=WEB_JS_ENTRY,
        ),
    )
}
#: The clients of today's protocol (``test_interop_current.py``).
CURRENT_CLIENTS = (f"st-{WEBSITE_CURRENT}", f"webjs-{WEB_JS}")


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)
    if result.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")


def _installed(project: Path, package: str) -> str | None:
    manifest = project / "node_modules" / package / "package.json"
    if not manifest.exists():
        return None
    version: str = json.loads(manifest.read_text())["version"]
    return version


def build(spec: Bundle) -> Path:
    """The IIFE bundle of ``spec`` (npm install and esbuild on first use)."""
    target = BUILD / spec.file_name
    if target.exists():
        return target
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        raise ToolMissingError("node and npm are needed to install and bundle the SuperTokens SDKs")
    project = CACHE / spec.project
    project.mkdir(parents=True, exist_ok=True)
    (project / "package.json").write_text(json.dumps({"name": "interop-bundle", "private": True}))
    if any(_installed(project, name) is None for name, _ in spec.pinned):
        _run(
            [
                npm,
                "install",
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
                "--no-save",
                "--loglevel=error",
                *spec.specs(),
            ],
            project,
        )
    for name, version in spec.pinned:
        installed = _installed(project, name)
        if installed != version:
            raise RuntimeError(f"npm installed {name} {installed}, wanted {version}")
    (project / "process-shim.js").write_text(PROCESS_SHIM)
    if spec.entry_source is not None:
        (project / spec.entry).write_text(spec.entry_source)
    BUILD.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial.js")
    _run(
        [
            node,
            str(project / "node_modules" / "esbuild" / "bin" / "esbuild"),
            str(project / spec.entry),
            "--bundle",
            "--format=iife",
            f"--global-name={spec.global_name}",
            "--platform=browser",
            "--target=es2017",
            "--define:global=window",
            "--inject:./process-shim.js",
            "--log-level=warning",
            f"--outfile={partial}",
        ],
        project,
    )
    partial.replace(target)
    return target


def bundle(version: str) -> Path:
    """The IIFE bundle of ``supertokens-website@version`` (global ``supertokens``)."""
    return build(BUNDLES[f"st-{version}"])

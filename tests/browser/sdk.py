"""The supertokens-website npm package, installed from the npm registry and bundled for the
browser with esbuild, into a git-ignored cache (``tests/browser/.npm-cache/``).

Nothing of the package is committed: :func:`bundle` runs ``npm install`` (with a cold cache
too) and ``esbuild`` the first time a version is asked for, then reuses the bundle.
"""

from __future__ import annotations

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
# The package reads process.env at run time (a Node-ism the browser lacks).
PROCESS_SHIM = "export const process = { env: {} };\n"


class ToolMissingError(RuntimeError):
    """node or npm is not installed."""


def bundle_name(version: str) -> str:
    return f"supertokens-website-{version}.js"


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)
    if result.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")


def bundle(version: str) -> Path:
    """The IIFE bundle of ``supertokens-website@version`` (global ``supertokens``)."""
    target = BUILD / bundle_name(version)
    if target.exists():
        return target
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        raise ToolMissingError("node and npm are needed to install and bundle supertokens-website")
    project = CACHE / f"supertokens-website-{version}"
    project.mkdir(parents=True, exist_ok=True)
    (project / "package.json").write_text(json.dumps({"name": "interop-bundle", "private": True}))
    package = project / "node_modules" / "supertokens-website"
    if not (package / "package.json").exists():
        _run(
            [
                npm,
                "install",
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
                "--no-save",
                "--loglevel=error",
                f"supertokens-website@{version}",
                AXIOS,
                ESBUILD,
            ],
            project,
        )
    installed = json.loads((package / "package.json").read_text())["version"]
    if installed != version:
        raise RuntimeError(f"npm installed supertokens-website {installed}, wanted {version}")
    (project / "process-shim.js").write_text(PROCESS_SHIM)
    BUILD.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial.js")
    _run(
        [
            node,
            str(project / "node_modules" / "esbuild" / "bin" / "esbuild"),
            str(package / "lib" / "build" / "bundleEntry.js"),
            "--bundle",
            "--format=iife",
            "--global-name=supertokens",
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

"""The peer apps of bench/peers.py answer 200 with a valid token and 401 without.

So the benchmark cannot silently measure an error page. Each app runs in its own process
(each Django app configures Django's settings at import), checked in-process through
``bench/peer_apps/selfcheck.py``. Skipped unless the ``[bench]`` extra (part of ``[dev]``) is installed.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

MISSING = [
    name
    for name in ("flask_jwt_extended", "rest_framework_simplejwt", "fastapi_users", "aiosqlite")
    if importlib.util.find_spec(name) is None
]
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"the [bench] extra is not installed (missing {', '.join(MISSING)})"
)

PEER_APPS = Path(__file__).resolve().parent.parent / "bench" / "peer_apps"
sys.path.insert(0, str(PEER_APPS))
import catalog  # noqa: E402


@pytest.fixture(scope="module")
def rsa_pems() -> tuple[str, str]:
    return catalog.rsa_pems()


CASES = [(app, alg) for app in catalog.APPS for alg in app.algorithms]
IDS = [f"{app.module}{'-own-venv' if app.python else ''}-{alg}" for app, alg in CASES]
BENCH = PEER_APPS.parent


@pytest.mark.parametrize(("app", "algorithm"), CASES, ids=IDS)
def test_peer_app_answers(
    app: catalog.PeerApp, algorithm: str, rsa_pems: tuple[str, str], tmp_path: Path
) -> None:
    python = sys.executable
    if app.python is not None:
        python = str(BENCH / app.python)
        if not Path(python).exists():
            pytest.skip(f"{app.python} not created (bench/peers.py creates it)")
    env = {
        **os.environ,
        "BENCH_ALG": "HS256" if algorithm == "-" else algorithm,
        "BENCH_WORKDIR": str(tmp_path),
        "BENCH_RSA_PRIVATE_KEY": rsa_pems[0],
        "BENCH_RSA_PUBLIC_KEY": rsa_pems[1],
    }
    result = subprocess.run(
        # supertokens-jwt-ref uses django.utils.timezone.utc, deprecated in Django 4.2: its own
        # warning, which -W error would turn into a 500 on every call.
        [python, *(["-W", "error"] if app.python is None else []), "selfcheck.py", app.module],
        cwd=PEER_APPS,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

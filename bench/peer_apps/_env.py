"""What every peer app reads from the environment: algorithm, keys, work directory.

The benchmark (``bench/peers.py``) and the test set ``BENCH_ALG`` (``HS256`` or ``RS256``),
``BENCH_HS_SECRET``, ``BENCH_RSA_PRIVATE_KEY`` / ``BENCH_RSA_PUBLIC_KEY`` (PEM) and
``BENCH_WORKDIR`` (where the SQLite files go).
"""

from __future__ import annotations

import os
from pathlib import Path

ALG = os.environ.get("BENCH_ALG", "HS256")
HS_SECRET = os.environ.get("BENCH_HS_SECRET", "bench-only-secret-0123456789abcdef0123456789abcdef")
WORKDIR = Path(os.environ.get("BENCH_WORKDIR", "."))
USER_ID = "bench-user"
REFRESH_HEADER = "x-bench-refresh-token"


def signing_key() -> str:
    """The key the peer signs with, in the form its docs show (a secret or a PEM string)."""
    return os.environ["BENCH_RSA_PRIVATE_KEY"] if ALG == "RS256" else HS_SECRET


def verifying_key() -> str:
    """The key the peer verifies with, in the form its docs show."""
    return os.environ["BENCH_RSA_PUBLIC_KEY"] if ALG == "RS256" else HS_SECRET


def db_path(name: str) -> Path:
    """A SQLite file of this app and algorithm in the work directory."""
    return WORKDIR / f"{name}-{ALG.lower()}.sqlite3"

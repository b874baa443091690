"""Shared set-up of the HTTP benchmark apps: config and the floor's public key from env."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.asymmetric import rsa
from floor import load_public_key

from sessionward import Config


def config() -> Config:
    return Config.from_env()


def floor_key() -> rsa.RSAPublicKey:
    return load_public_key(os.environ["BENCH_FLOOR_PUBLIC_KEY"].encode())

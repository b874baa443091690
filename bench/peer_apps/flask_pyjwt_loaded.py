"""Flask + PyJWT by hand with the RSA keys loaded once as key objects (not in PyJWT's docs'
examples, which pass PEM strings that it parses again on every call)."""

from __future__ import annotations

import _env
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from flask_pyjwt import make_app

app = make_app(
    load_pem_private_key(_env.signing_key().encode(), password=None),
    load_pem_public_key(_env.verifying_key().encode()),
)

"""Flask with no session library: the reference every Flask ratio is taken against."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/plain")
def plain() -> Any:
    return jsonify(ok=True, user=None)

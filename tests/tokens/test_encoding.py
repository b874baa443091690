"""Strict encodings (docs/design/security.md): base64url, JSON and SHA-256 hex."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os

import pytest

from sessionward.tokens.encoding import (
    MalformedError,
    b64url_decode,
    b64url_encode,
    dumps_compact,
    loads_strict,
    sha256_hex,
)

# -- base64url ---------------------------------------------------------------------------


@pytest.mark.parametrize("length", range(0, 70))
def test_b64url_round_trip_every_length(length: int) -> None:
    data = os.urandom(length)
    encoded = b64url_encode(data)
    assert "=" not in encoded and "+" not in encoded and "/" not in encoded
    assert len(encoded) % 4 != 1
    assert b64url_decode(encoded) == data
    assert b64url_decode(encoded.encode("ascii")) == data


def test_b64url_matches_stdlib_urlsafe_without_padding() -> None:
    data = bytes(range(256)) * 3
    assert b64url_encode(data) == base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_b64url_uses_url_safe_characters() -> None:
    # 0xfb 0xff encodes to "-_8" in base64url and "+/8=" in standard base64.
    assert b64url_encode(b"\xfb\xff") == "-_8"
    assert b64url_decode("-_8") == b"\xfb\xff"


def test_b64url_empty() -> None:
    assert b64url_encode(b"") == ""
    assert b64url_decode("") == b""
    assert b64url_decode(b"") == b""


@pytest.mark.parametrize(
    "text",
    [
        "YQ==",  # padding
        "YWI=",
        "YQ=",
        "=",
        "====",
        "+_8",  # standard alphabet
        "-/8",
        "+/8=",
        "YW Jj",  # whitespace anywhere
        " YWJj",
        "YWJj ",
        "YWJj\n",
        "YW\tJj",
        "YWJj\r\n",
        "YW?j",
        "YW#j",
        "YW.j",
        "YW,j",
        "YW*j",
        "YWJj\x00",
        "Y",  # length % 4 == 1
        "YWJjZ",
        "YWJjZGVmZ",
    ],
)
def test_b64url_rejects_lenient_forms(text: str) -> None:
    with pytest.raises(MalformedError):
        b64url_decode(text)
    with pytest.raises(MalformedError):
        b64url_decode(text.encode("latin-1"))


def test_b64url_strict_decoding_of_valid_prefix() -> None:
    assert b64url_decode("YQ") == b"a"
    assert b64url_decode("YWI") == b"ab"
    assert b64url_decode("YWJj") == b"abc"


@pytest.mark.parametrize(
    "text",
    [
        "YR",  # "a" is "YQ"; R sets an unused trailing bit
        "YT",
        "Y_",
        "YWJ",  # "ab" is "YWI"; J sets an unused trailing bit
        "YWL",
        "YWK",
        "YW_",
    ],
)
def test_b64url_rejects_non_canonical_trailing_bits(text: str) -> None:
    # The lenient stdlib decoder accepts these, making the encoding malleable.
    assert len(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))) in (1, 2)
    with pytest.raises(MalformedError):
        b64url_decode(text)


def test_b64url_every_non_canonical_final_character_is_rejected() -> None:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    accepted_two = [c for c in alphabet if _decodes("Y" + c)]
    accepted_three = [c for c in alphabet if _decodes("YW" + c)]
    # With 2 chars (1 byte) only 4 of 64 final characters are canonical; with 3, 16 of 64.
    assert accepted_two == ["A", "Q", "g", "w"]
    assert len(accepted_three) == 16
    for final in accepted_three:
        assert b64url_encode(b64url_decode("YW" + final)) == "YW" + final


def _decodes(text: str) -> bool:
    try:
        b64url_decode(text)
    except MalformedError:
        return False
    return True


@pytest.mark.parametrize("text", ["é", "YWJj\u00e9", "\u0661\u0662\u0663\u0664", "YW\uff2aj", "\ud800AAA"])
def test_b64url_rejects_non_ascii_as_malformed(text: str) -> None:
    with pytest.raises(MalformedError):
        b64url_decode(text)


@pytest.mark.parametrize("raw", [b"\xff\xfe\xfd\xfc", b"YWJj\x80", bytes(range(128, 132))])
def test_b64url_rejects_non_ascii_bytes(raw: bytes) -> None:
    with pytest.raises(MalformedError):
        b64url_decode(raw)


def test_malformed_error_is_a_value_error() -> None:
    assert issubclass(MalformedError, ValueError)


# -- JSON --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        {},
        [],
        {"a": 1, "b": [1, 2, {"c": None}], "d": True, "e": False, "f": 1.5, "g": "x"},
        {"unicode": "h\u00e9llo \u263a \U0001f600", "ctl": "\n\t\x00"},
        {"big": 10**30, "neg": -(10**20)},
        "text",
        0,
        None,
    ],
)
def test_json_round_trip(value: object) -> None:
    text = dumps_compact(value)
    assert text.isascii()
    assert text == json.dumps(value, separators=(",", ":"), ensure_ascii=True)
    assert loads_strict(text.encode("ascii")) == value


def test_dumps_compact_is_compact_and_ascii_escaped() -> None:
    assert dumps_compact({"a": [1, 2], "b": "\u00e9"}) == '{"a":[1,2],"b":"\\u00e9"}'


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), {"exp": float("nan")}])
def test_dumps_compact_refuses_non_finite_numbers(value: object) -> None:
    with pytest.raises(ValueError):
        dumps_compact(value)


@pytest.mark.parametrize(
    "value",
    [{"a": object()}, {(1, 2): 1}, [1, {"nested": {1j}}], float("nan")],
    ids=["unserialisable", "tuple-key", "nested-set", "nan"],
)
def test_dumps_compact_fails_as_the_json_encoder_does_and_recovers(value: object) -> None:
    """Same exception and message as ``json.JSONEncoder``; a failure leaves nothing behind
    (the same objects serialise afterwards, no false circular reference)."""
    reference = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    with pytest.raises((TypeError, ValueError)) as expected:
        reference.encode(value)
    with pytest.raises(type(expected.value)) as raised:
        dumps_compact(value)
    assert str(raised.value) == str(expected.value)
    shared = {"k": [1, "x"]}
    with pytest.raises(TypeError):
        dumps_compact({"shared": shared, "bad": object()})
    assert dumps_compact({"shared": shared}) == '{"shared":{"k":[1,"x"]}}'


def test_dumps_compact_reports_circular_references() -> None:
    cycle: list[object] = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="Circular reference detected"):
        dumps_compact(cycle)


def test_loads_strict_accepts_utf8() -> None:
    assert loads_strict('{"name":"J\u00fcrgen \u263a"}'.encode()) == {"name": "J\u00fcrgen \u263a"}
    assert loads_strict(b'{"a" : [ 1 , 2 ] }') == {"a": [1, 2]}


@pytest.mark.parametrize(
    "data",
    [
        b'{"a":1,"a":2}',
        b'{"a":1,"a":1}',
        b'{"alg":"none","alg":"RS256"}',
        b'{"x":{"b":1,"b":2}}',
        b'[{"k":1,"k":1}]',
        b'{"sub":"victim","sub":"attacker"}',
        b'{"\\u0061":1,"a":2}',  # the same member spelled two ways
    ],
)
def test_loads_strict_rejects_duplicate_members(data: bytes) -> None:
    with pytest.raises(MalformedError):
        loads_strict(data)


@pytest.mark.parametrize(
    "data",
    [
        b"NaN",
        b"Infinity",
        b"-Infinity",
        b'{"exp":NaN}',
        b'{"exp":Infinity}',
        b'{"exp":-Infinity}',
        b"[1,NaN]",
    ],
)
def test_loads_strict_rejects_non_finite_constants(data: bytes) -> None:
    with pytest.raises(MalformedError):
        loads_strict(data)


@pytest.mark.parametrize(
    "data",
    [
        b'{"a":"\xff"}',
        b'{"a":"\xc3"}',
        b'{"a":"\xed\xa0\x80"}',  # UTF-8-encoded surrogate
        b'{"a":"\xc0\xaf"}',  # overlong
        b"\x80",
        '{"a":1}'.encode("utf-16"),  # with BOM
        '{"a":1}'.encode("utf-16-le"),
        '{"a":1}'.encode("utf-16-be"),
        '{"a":1}'.encode("utf-32"),
        b"\xef\xbb\xbf" + b'{"a":1}',  # UTF-8 BOM is not JSON text either
    ],
)
def test_loads_strict_rejects_non_utf8_and_boms(data: bytes) -> None:
    with pytest.raises(MalformedError):
        loads_strict(data)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b" ",
        b"{",
        b"}",
        b'{"a":1',
        b'{"a":1}x',
        b'{"a":1}{"b":2}',
        b"{'a':1}",
        b'{"a":01}',
        b'{"a":1,}',
        b"[1,]",
        b'{"a":undefined}',
        b'{"a":.5}',
        b'{"a":"\x01"}',  # raw control character inside a string
        b'{"a":"\\x41"}',
        b"{a:1}",
        b"1" * 5000,  # integer over the int/str conversion limit
        b'{"exp":' + b"9" * 4301 + b"}",
    ],
)
def test_loads_strict_rejects_invalid_json(data: bytes) -> None:
    with pytest.raises(MalformedError):
        loads_strict(data)


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 100_000,
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_loads_strict_deep_nesting_is_malformed_not_recursion_error(data: bytes) -> None:
    with pytest.raises(MalformedError):
        loads_strict(data)


def test_loads_strict_raises_only_malformed_error_on_garbage() -> None:
    samples = [os.urandom(n) for n in range(1, 64)] + [b'{"a":' + os.urandom(8) + b"}" for _ in range(64)]
    for data in samples:
        # Any exception other than MalformedError escapes and fails the test.
        with contextlib.suppress(MalformedError):
            loads_strict(data)


def test_loads_strict_rejects_non_bytes_input_cleanly() -> None:
    with pytest.raises((MalformedError, AttributeError, TypeError)):
        loads_strict("{}")  # type: ignore[arg-type]


def test_loads_strict_agrees_with_stdlib_on_valid_input() -> None:
    text = json.dumps({"k": [1, 2.5, "s", None, True, {"n": -3}]})
    assert loads_strict(text.encode()) == json.loads(text)


# -- SHA-256 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "digest"),
    [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ],
)
def test_sha256_hex_known_answers(text: str, digest: str) -> None:
    assert sha256_hex(text) == digest


def test_sha256_hex_is_lowercase_hex_of_utf8() -> None:
    text = "h\u00e9llo \U0001f600"
    value = sha256_hex(text)
    assert value == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert len(value) == 64
    assert value == value.lower()
    assert all(c in "0123456789abcdef" for c in value)
    # Hashing twice (the stored hash2) is the hash of the hex string.
    assert sha256_hex(value) == hashlib.sha256(value.encode("ascii")).hexdigest()

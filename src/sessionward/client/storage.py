"""The token file: a session kept between runs of a program (a command-line tool's login).

The file is JSON, private to its owner (mode 0600), and replaced atomically: every write
goes to a new 0600 file in the same directory, created exclusively, flushed to disk, then
renamed over the old one, so a reader sees the old or the new tokens, never a mix. A file
that other users may read or write, that belongs to someone else or that is not a regular
file is refused with :class:`~sessionward.client.TokenFileError` (as ``ssh`` refuses a
private key others can read); a file whose content is not a token file (edited by hand,
written by something else) is logged and treated as no session: the next sign-in replaces
it. Signing out deletes the file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import stat
from typing import Any

from .errors import TokenFileError
from .tokens import StoredTokens, is_origin, is_token

__all__ = ["TokenFile"]

_LOGGER = logging.getLogger("sessionward.client")
_FORMAT = "sessionward-client-tokens"
_VERSION = 1
_MAX_BYTES = 256 * 1024
_PRIVATE_MODE = 0o600
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
# (device, inode, size, mtime): a file replaced or rewritten since the last look differs.
_Signature = tuple[int, int, int, int]


def _signature(status: os.stat_result) -> _Signature:
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


class TokenFile:
    """One token file, read again whenever it changed on disk (another process of the same
    user signed in, refreshed or signed out)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        # A symbolic link is followed once: writes replace its target, not the link.
        self.path = os.path.realpath(os.fspath(path))
        self._seen: _Signature | None = None

    def __repr__(self) -> str:
        return f"TokenFile({self.path!r})"

    def read_if_changed(self) -> tuple[bool, StoredTokens | None]:
        """``(changed, tokens)``: whether the file changed since the last read or write, and
        if so the tokens it now holds (``None``: no file, or no usable content)."""
        try:
            signature: _Signature | None = _signature(os.stat(self.path))
        except FileNotFoundError:
            signature = None
        except OSError as exc:
            raise TokenFileError(f"cannot read the token file {self.path}: {exc.strerror}") from None
        if signature == self._seen:
            return False, None
        if signature is None:
            self._seen = None
            return True, None
        return True, self._read()

    def _read(self) -> StoredTokens | None:
        try:
            fd = os.open(self.path, os.O_RDONLY | _CLOEXEC)
        except FileNotFoundError:
            self._seen = None
            return None
        except OSError as exc:
            raise TokenFileError(f"cannot read the token file {self.path}: {exc.strerror}") from None
        try:
            status = os.fstat(fd)
            _check_private(self.path, status)
        except BaseException:
            os.close(fd)
            raise
        with os.fdopen(fd, "rb") as file:
            raw = file.read(_MAX_BYTES + 1)
        self._seen = _signature(status)
        tokens = _parse(raw)
        if tokens is None:
            _LOGGER.warning(
                "the token file %s does not hold sessionward client tokens: treated as signed out "
                "(the next sign-in replaces it)",
                self.path,
            )
        return tokens

    def write(self, tokens: StoredTokens | None) -> None:
        """Replace the file's content with ``tokens`` (``None`` deletes the file)."""
        if tokens is None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise TokenFileError(f"cannot delete the token file {self.path}: {exc.strerror}") from None
            self._seen = None
            return
        data = json.dumps(
            {
                "format": _FORMAT,
                "version": _VERSION,
                "origin": tokens.origin,
                "access_token": tokens.access_token,
                "refresh_token": tokens.refresh_token,
                "front_token": tokens.front_token,
            }
        ).encode()
        directory, name = os.path.split(self.path)
        temporary = os.path.join(directory, f".{name}.{secrets.token_hex(8)}.tmp")
        try:
            fd = os.open(
                temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, _PRIVATE_MODE
            )
        except OSError as exc:
            raise TokenFileError(f"cannot write the token file {self.path}: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "wb") as file:
                if hasattr(os, "fchmod"):
                    os.fchmod(fd, _PRIVATE_MODE)  # the umask may have taken bits away
                file.write(data)
                file.flush()
                os.fsync(fd)
                # Renaming keeps inode and modification time: this is the replaced file's signature.
                signature = _signature(os.fstat(fd))
            os.replace(temporary, self.path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            if isinstance(exc, OSError):
                raise TokenFileError(f"cannot write the token file {self.path}: {exc.strerror}") from None
            raise
        self._seen = signature


def _check_private(path: str, status: os.stat_result) -> None:
    if os.name != "posix":
        return
    if not stat.S_ISREG(status.st_mode):
        raise TokenFileError(f"the token file {path} is not a regular file")
    if status.st_uid != os.geteuid():
        raise TokenFileError(f"the token file {path} belongs to another user (uid {status.st_uid})")
    mode = stat.S_IMODE(status.st_mode)
    if mode & 0o077:
        raise TokenFileError(
            f"the token file {path} has mode {mode:04o}: other users may read or change it; "
            f"make it private (chmod 600 {path}) or delete it and sign in again"
        )


def _parse(raw: bytes) -> StoredTokens | None:
    if len(raw) > _MAX_BYTES:
        return None
    try:
        content: Any = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if (
        not isinstance(content, dict)
        or content.get("format") != _FORMAT
        or content.get("version") != _VERSION
    ):
        return None
    origin, access, refresh, front = (
        content.get("origin"),
        content.get("access_token"),
        content.get("refresh_token"),
        content.get("front_token"),
    )
    if not is_origin(origin) or not is_token(access):
        return None
    if not (refresh is None or is_token(refresh)) or not (front is None or is_token(front)):
        return None
    return StoredTokens(origin, access, refresh, front)

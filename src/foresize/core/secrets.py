"""Secrets that must never reach a terminal, a log or an error message.

A credential (the Prometheus bearer token) is registered here the moment it is read, and
every line foresize prints about an error goes through :func:`redact`. Redacting at the
one place text leaves the process, rather than at each place a message is built, also
covers text foresize does not write itself: a server that echoes the request header in
its error body, or a library exception that quotes a header value.
"""

from __future__ import annotations

import re

MASK = "***"
# a secret shorter than this is too likely to be an ordinary word of a message
_MIN_CHARS = 4
_SECRETS: set[str] = set()
# ``scheme://user:password@host``: credentials inside any URL a message quotes
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@]+@")
# ``Authorization: Bearer X`` / ``b'Bearer X'``: a header value a library exception quotes
# (case-sensitive and at least 8 characters, so "the bearer token was refused" stays)
_AUTH_VALUE = re.compile(r"\b(Bearer|Basic)(\s+)[A-Za-z0-9\-._~+/]{8,}=*")


def register(secret: str) -> None:
    """Remember ``secret`` (and each of its lines) so :func:`redact` masks it."""
    for part in (secret, *secret.splitlines(), *secret.split()):
        part = part.strip()
        if len(part) >= _MIN_CHARS:
            _SECRETS.add(part)


def redact(text: str) -> str:
    """``text`` with every registered secret, URL credential and auth header value masked."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    text = _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    return _AUTH_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


def first_bad_char(value: str) -> int | None:
    """Index of the first character that cannot be sent in an HTTP header token (a control
    character, a space or non-ASCII), else None.
    """
    for index, char in enumerate(value):
        if not "\x21" <= char <= "\x7e":
            return index
    return None

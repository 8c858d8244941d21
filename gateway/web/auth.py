"""Bearer tokens of the HTTP surfaces: the tokens file, and the ``require(scope)`` dependency.

The tokens file (``[http] tokens``, relative to the configuration file) has one line per token::

    # name:scopes:sha256
    archivist:read:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    dms-check:preflight:...
    admin:read,admin:...

A token is 32 random bytes in URL-safe base64 (``gateway token add`` makes one and prints it
once). Only its SHA-256 is stored: a high-entropy secret needs no slow hash, and a stolen file
gives nobody a token. Presented tokens are compared with ``hmac.compare_digest``.

Scopes (none implies another): ``read`` (the JSON API and the archivist's pages), ``preflight``
(``POST /preflight``), ``admin`` (``POST /api/v1/rules/replay``).

A request authenticates with ``Authorization: Bearer <token>`` or with the ``gateway_token``
cookie (set by the pages' login form). A token in the query string is never accepted: URLs end
up in logs and browser histories.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fastapi import HTTPException, Request, status

from gateway.errors import ConfigError

__all__ = [
    "COOKIE",
    "SCOPES",
    "TokenInfo",
    "TokenStore",
    "authenticate",
    "check_name",
    "check_scopes",
    "hash_token",
    "new_token",
    "presented_token",
    "require",
    "token_line",
]

SCOPES: Final = ("read", "preflight", "admin")
COOKIE: Final = "gateway_token"
"""The cookie the pages' login form sets (HttpOnly, SameSite=Strict)."""

_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_HASH_RE: Final = re.compile(r"[0-9a-f]{64}")
_LINE_HINT: Final = "name:scope[,scope]:sha256 (gateway token add NAME --scope read writes one)"


@dataclass(frozen=True)
class TokenInfo:
    """Who a request authenticated as."""

    name: str
    scopes: frozenset[str]
    sha256: str


def new_token() -> str:
    """A fresh token: 32 random bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The SHA-256 (hex) stored for ``token``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_name(name: str) -> str:
    """Return ``name`` if it can name a token.

    Raises:
        ConfigError: empty, too long, or other characters than letters, digits, ``. _ @ -``.
    """
    if not _NAME_RE.fullmatch(name):
        raise ConfigError(f"{name!r} cannot name a token", hint="1-64 letters, digits, '.', '_', '@', '-'")
    return name


def check_scopes(scopes: list[str] | tuple[str, ...]) -> frozenset[str]:
    """Return the scopes as a set if every one is known and there is at least one.

    Raises:
        ConfigError: none, or an unknown one.
    """
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise ConfigError(
            f"unknown token scope {unknown[0]!r}" if unknown else "a token needs at least one scope",
            hint=f"scopes: {', '.join(SCOPES)}",
        )
    return frozenset(scopes)


def token_line(info: TokenInfo) -> str:
    """The tokens-file line of ``info`` (scopes in the order of ``SCOPES``)."""
    return f"{info.name}:{','.join(s for s in SCOPES if s in info.scopes)}:{info.sha256}"


def _parse_line(line: str) -> TokenInfo:
    parts = line.split(":")
    if len(parts) != 3:
        raise ValueError("expected three fields separated by ':'")
    name, scopes, digest = parts
    if not _HASH_RE.fullmatch(digest):
        raise ValueError("the third field is not a SHA-256 in lowercase hex")
    try:
        return TokenInfo(check_name(name), check_scopes(scopes.split(",")), digest)
    except ConfigError as exc:
        raise ValueError(exc.detail) from None


class TokenStore:
    """The tokens in force (read once at start, again on SIGHUP).

    Args:
        tokens: the entries.
        path: the file they were read from (``None``: no tokens file configured; every protected
            request is refused).
    """

    def __init__(self, tokens: tuple[TokenInfo, ...] = (), path: Path | None = None) -> None:
        self.tokens = tokens
        self.path = path

    @classmethod
    def load(cls, path: Path) -> TokenStore:
        """Read a tokens file (format in the module docstring).

        Raises:
            ConfigError: the file cannot be read, or a line is malformed or repeats a name
                (the message names the file and the line).
        """
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(
                "the tokens file does not exist", path=path, hint="create it with gateway token add NAME --scope read"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the tokens file ({exc})", path=path) from None
        tokens: dict[str, TokenInfo] = {}
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            try:
                info = _parse_line(line)
                if info.name in tokens:
                    raise ValueError(f"the name {info.name!r} is already used on an earlier line")
            except ValueError as exc:
                raise ConfigError(f"not a token line: {exc}", path=path, line=number, hint=_LINE_HINT) from None
            tokens[info.name] = info
        return cls(tuple(tokens.values()), path)

    def reload(self) -> None:
        """Read the file again (SIGHUP); a bad file changes nothing.

        Raises:
            ConfigError: as for :meth:`load` (the tokens in force stay).
        """
        self.staged()()

    def staged(self) -> Callable[[], None]:
        """Read the file again without using it yet; the returned call puts it in force.

        Raises:
            ConfigError: as for :meth:`load`; nothing changes.
        """
        if self.path is None:
            return lambda: None
        tokens = TokenStore.load(self.path).tokens

        def use() -> None:
            self.tokens = tokens

        return use

    def find(self, token: str) -> TokenInfo | None:
        """The entry whose hash matches ``token``, or ``None`` (every entry is compared)."""
        digest = hash_token(token)
        found: TokenInfo | None = None
        for info in self.tokens:
            if hmac.compare_digest(info.sha256, digest):
                found = info
        return found


def presented_token(request: Request) -> str | None:
    """The token a request carries: ``Authorization: Bearer``, else the ``gateway_token`` cookie."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(COOKIE) or None


def _tokens(request: Request) -> TokenStore:
    store: TokenStore = request.app.state.deps.tokens
    return store


def authenticate(request: Request, scope: str) -> TokenInfo | None:
    """Who the request authenticated as, if the token is known and grants ``scope``.

    Also records the token's name on ``request.state.token`` for the access log.

    Raises:
        ValueError: ``scope`` is not one of ``SCOPES`` (a programming error).
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    token = presented_token(request)
    info = None if token is None else _tokens(request).find(token)
    if info is not None:
        request.state.token = info.name
    return info if info is not None and scope in info.scopes else None


def require(scope: str) -> Callable[[Request], Awaitable[TokenInfo]]:
    """A FastAPI dependency: the request's token must exist and grant ``scope``.

    401 with ``WWW-Authenticate: Bearer`` when no known token is presented; 403 when the token
    lacks the scope.

    Raises:
        ValueError: ``scope`` is not one of ``SCOPES``.
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    async def dependency(request: Request) -> TokenInfo:
        info = authenticate(request, scope)
        if info is not None:
            return info
        if getattr(request.state, "token", None) is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="a valid token is required: Authorization: Bearer <token>",
                headers={"WWW-Authenticate": 'Bearer realm="gateway"'},
            )
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"this token does not have the {scope!r} scope")

    return dependency

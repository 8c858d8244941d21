"""The gateway's exception tree. Every error we raise on purpose derives from ``GatewayError``.

::

    GatewayError                 could not do what was asked
    ├── ConfigError              bad configuration or usage: names the file, key, line and the fix
    ├── TransientError           try again later   (SMTP 4xx, work item deferred)
    └── PermanentError           will never succeed (SMTP 5xx, work item refused)

Exceptions mean "could not judge" or "could not do"; a verification *verdict* is a value,
never an exception (HOUSE.md rule 5). Each error carries its wire meaning so that only the
edges translate it: the SMTP handler sends ``smtp_reply`` (never the exception text), the CLI
maps it to an exit status, the HTTP API to a status code.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "ConfigError",
    "GatewayError",
    "PermanentError",
    "TransientError",
]


class GatewayError(Exception):
    """Root of all deliberate gateway errors."""

    smtp_reply: str = "451 4.3.0 Local error in processing; try again later"
    """What an SMTP peer is told. Generic on purpose: no internals leak to peers."""

    exit_status: int = 1
    """What the CLI exits with."""


class ConfigError(GatewayError):
    """Configuration or usage that cannot work.

    The message names where the problem is and how to fix it, in the style
    ``gateway.toml:12: unknown key 'polcy' in [verify]; valid keys: policy``.
    """

    exit_status = 2

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = None if path is None else Path(path)
        self.line = line
        self.hint = hint
        self.detail = message
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        text = where + message
        if hint:
            text += f" ({hint})"
        super().__init__(text)


class TransientError(GatewayError):
    """Something outside us is not available now (disk full, OCSP/TSA down). Retry later."""

    smtp_reply = "451 4.3.0 Temporary local problem; try again later"
    exit_status = 3
    """Like a deferred verdict: the same command may succeed later."""


class PermanentError(GatewayError):
    """The request can never succeed as it stands."""

    smtp_reply = "554 5.6.0 Message refused"

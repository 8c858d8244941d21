"""Log output of the long-running service: one line per event, Vietnam time, the work item bound.

Every module logs through the standard ``logging`` API; this routes the records through
structlog's formatter so that each line carries a ``+07:00`` ISO 8601 time (HOUSE.md rule 12),
the logger, the level, and whatever the code bound in ``structlog.contextvars`` for the task
in progress (the scheduler binds ``item`` and ``kind``: every line a handler logs names the
work item, HOUSE.md rule 15).

Two renderings: ``text`` (``key=value``, for journald and a terminal) and ``json`` (one object
per line, for log shippers).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any, Literal

import structlog

from gateway.clock import iso_vn

__all__ = ["LogFormat", "configure_logging"]

LogFormat = Literal["text", "json"]


def _vn_time(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event["timestamp"] = iso_vn(datetime.now(UTC))
    return event


def configure_logging(*, level: str = "INFO", format: LogFormat = "text") -> None:
    """Send every ``logging`` record to stderr, one rendered line each.

    Args:
        level: the lowest level shown (``DEBUG``, ``INFO``, ``WARNING``, ``ERROR``).
        format: ``text`` or ``json``.

    Raises:
        ValueError: an unknown level.
    """
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}")
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if format == "json"
        else structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0, sort_keys=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            _vn_time,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(number)
    # Chatty libraries: their INFO lines are per connection or per request.
    for name in ("aiosmtpd", "mail.log", "aioimaplib", "aiohttp.access", "sqlalchemy.engine", "alembic", "fontTools"):
        logging.getLogger(name).setLevel(max(number, logging.WARNING))

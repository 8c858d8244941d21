"""How the HTTP surfaces answer what they cannot do: one JSON shape, or a page; no internals leaked.

Every error body is ``{"status": <code>, "detail": "<what and how to fix it>"}``, plus
``"parameter"`` (which query or path parameter) and ``"accepted"`` (the forms it takes) when a
request value was refused. FastAPI's own validation errors (a ``limit`` that is not a number)
are turned into the same shape. Gateway errors keep their meaning (HOUSE.md rule 6):
``TransientError`` is 503 (try later), ``PermanentError`` 422, ``ConfigError`` 400 (the request
named something that cannot work); a 503 says when to come back (``Retry-After``). Anything else
is a bug: logged with its traceback, answered 500 without the exception text.

Errors on the archivist's pages (``gateway.web.pages.is_page_request``: decided by the route,
not by ``Accept``) are answered with an HTML page instead: the same status and headers, words
in the page's language, never the exception's text (gateway errors are logged instead). The
JSON API, pre-flight, ``/metrics`` and ``/healthz`` always answer JSON.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final, cast

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.errors import ConfigError, GatewayError, PermanentError, TransientError
from gateway.web.pages import error_page, is_page_request

__all__ = ["ERROR_RESPONSES", "RETRY_AFTER", "ApiError", "install_error_handlers"]

log = logging.getLogger(__name__)

RETRY_AFTER: Final = "60"
"""Seconds a client should wait after a 503 for a ``TransientError`` (the pages say "a minute")."""


class ApiError(HTTPException):
    """A refused request, naming the parameter and the accepted forms when one is at fault.

    Args:
        status_code: the HTTP status (400 bad value, 404 unknown id, 413 too large...).
        detail: what is wrong and how to fix it.
        parameter: the query/path parameter at fault, if any.
        accepted: the forms it takes, if any.
    """

    def __init__(
        self,
        status_code: int,
        detail: str,
        *,
        parameter: str | None = None,
        accepted: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code, detail=detail, headers=headers)
        self.parameter = parameter
        self.accepted = accepted


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No known token (`Authorization: Bearer <token>`)"},
    403: {"description": "The token lacks the scope this endpoint needs"},
}
"""The auth refusals every protected route documents in the OpenAPI schema."""


def _body(status: int, detail: str, parameter: str | None = None, accepted: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"status": status, "detail": detail}
    if parameter is not None:
        body["parameter"] = parameter
    if accepted is not None:
        body["accepted"] = accepted
    return body


def _answer(
    request: Request,
    status: int,
    detail: str,
    *,
    parameter: str | None = None,
    accepted: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The page for a page route (``detail`` is not shown there), else the JSON body."""
    if is_page_request(request):
        return error_page(request, status, field=parameter, headers=headers)
    return JSONResponse(_body(status, detail, parameter, accepted), status_code=status, headers=headers)


async def _http_error(request: Request, error: Exception) -> Response:
    exc = cast(StarletteHTTPException, error)  # registered for this class only
    parameter = getattr(exc, "parameter", None)
    accepted = getattr(exc, "accepted", None)
    return _answer(
        request, exc.status_code, str(exc.detail), parameter=parameter, accepted=accepted, headers=exc.headers
    )


async def _validation_error(request: Request, error: Exception) -> Response:
    exc = cast(RequestValidationError, error)
    first = exc.errors()[0] if exc.errors() else {}
    location = [str(part) for part in first.get("loc", ())]
    parameter = location[-1] if len(location) > 1 else None
    where = f"{location[0]} parameter {parameter!r}" if parameter is not None else "the request"
    detail = f"{where}: {first.get('msg', 'invalid value')}"
    return _answer(request, 422, detail, parameter=parameter)


async def _gateway_error(request: Request, exc: Exception) -> Response:
    headers: dict[str, str] | None = None
    if isinstance(exc, TransientError):
        log.warning("request failed, try again later: %s", exc)
        status, detail = 503, f"temporarily unavailable, try again later: {exc}"
        headers = {"Retry-After": RETRY_AFTER}
    elif isinstance(exc, PermanentError):
        status, detail = 422, str(exc)
    elif isinstance(exc, ConfigError):
        status, detail = 400, str(exc)
    else:
        log.error("request failed: %s", exc)
        status, detail = 500, "the gateway could not complete the request (see its log)"
    if status in (400, 422) and is_page_request(request):
        log.warning("page request refused (%d): %s", status, exc)  # the page does not show the text
    return _answer(request, status, detail, headers=headers)


async def _bug(request: Request, exc: Exception) -> Response:
    log.error("unexpected error in an HTTP handler", exc_info=exc)
    return _answer(request, 500, "internal error (see the gateway's log)")


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers described in the module docstring on ``app``."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(Exception, _bug)

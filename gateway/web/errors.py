"""How the HTTP surfaces answer what they cannot do: one JSON shape, no internals leaked.

Every error body is ``{"status": <code>, "detail": "<what and how to fix it>"}``, plus
``"parameter"`` (which query or path parameter) and ``"accepted"`` (the forms it takes) when a
request value was refused. FastAPI's own validation errors (a ``limit`` that is not a number)
are turned into the same shape. Gateway errors keep their meaning (HOUSE.md rule 6):
``TransientError`` is 503 (try later), ``PermanentError`` 422, ``ConfigError`` 400 (the request
named something that cannot work). Anything else is a bug: logged with its traceback, answered
500 without the exception text.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.errors import ConfigError, GatewayError, PermanentError, TransientError

__all__ = ["ERROR_RESPONSES", "ApiError", "install_error_handlers"]

log = logging.getLogger(__name__)


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


async def _http_error(_request: Request, error: Exception) -> JSONResponse:
    exc = cast(StarletteHTTPException, error)  # registered for this class only
    parameter = getattr(exc, "parameter", None)
    accepted = getattr(exc, "accepted", None)
    return JSONResponse(
        _body(exc.status_code, str(exc.detail), parameter, accepted),
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _validation_error(_request: Request, error: Exception) -> JSONResponse:
    exc = cast(RequestValidationError, error)
    first = exc.errors()[0] if exc.errors() else {}
    location = [str(part) for part in first.get("loc", ())]
    parameter = location[-1] if len(location) > 1 else None
    where = f"{location[0]} parameter {parameter!r}" if parameter is not None else "the request"
    detail = f"{where}: {first.get('msg', 'invalid value')}"
    return JSONResponse(_body(422, detail, parameter), status_code=422)


async def _gateway_error(_request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, TransientError):
        status, detail = 503, f"temporarily unavailable, try again later: {exc}"
    elif isinstance(exc, PermanentError):
        status, detail = 422, str(exc)
    elif isinstance(exc, ConfigError):
        status, detail = 400, str(exc)
    else:
        log.error("request failed: %s", exc)
        status, detail = 500, "the gateway could not complete the request (see its log)"
    return JSONResponse(_body(status, detail), status_code=status)


async def _bug(_request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error in an HTTP handler", exc_info=exc)
    return JSONResponse(_body(500, "internal error (see the gateway's log)"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers described in the module docstring on ``app``."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(Exception, _bug)

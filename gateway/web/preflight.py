"""``POST /preflight``: the verdict our policy would give a package, without accepting it.

A sender (or its DMS vendor) uploads an edXML package, as the raw request body or as the
``package`` file of a ``multipart/form-data`` form, and gets ``gateway verify --json``'s
object back (``VerificationReport.to_json``): verdict, indication, findings with their codes
and Vietnamese/English texts, the signatures, the policy's hash.

Nothing is kept: the package is read into memory, judged by the service's verifier, and
dropped. No work item, no journal event, no spool file, no mail (the tests check the row count,
the journal head and the spool directory). Needs a ``preflight`` token; the upload may not
exceed ``[edxml] max_package_bytes`` (413), which is checked on ``Content-Length`` first and
again while reading, so a lying or absent header cannot make us buffer more.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from gateway.verify.package import verify_package
from gateway.web.auth import TokenInfo, require
from gateway.web.deps import WebDeps, deps
from gateway.web.errors import ERROR_RESPONSES, ApiError

__all__ = ["FORM_FIELD", "router"]

router = APIRouter(tags=["pre-flight"])

FORM_FIELD: Final = "package"
"""The form field of a multipart upload."""
_MULTIPART_OVERHEAD: Final = 64 * 1024
"""Room for the multipart boundaries and part headers around a package of the maximum size."""

_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The edXML package: the raw body, or the `package` file of a multipart form.",
        "content": {
            "application/xml": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {FORM_FIELD: {"type": "string", "format": "binary"}},
                    "required": [FORM_FIELD],
                }
            },
        },
    }
}


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        f"the package is larger than [edxml] max_package_bytes = {limit} bytes",
        parameter="body",
        accepted=f"at most {limit} bytes",
    )


async def _capped(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    """The request body, refused with 413 as soon as more than ``limit`` bytes arrive."""
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise _too_large(limit)
        yield chunk


async def _package(request: Request, limit: int) -> bytes:
    """The uploaded package's bytes (raw body or the form's ``package`` file)."""
    multipart = request.headers.get("content-type", "").lower().startswith("multipart/form-data")
    allowed = limit + _MULTIPART_OVERHEAD if multipart else limit
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > allowed:
        raise _too_large(limit)
    if not multipart:
        raw = b"".join([chunk async for chunk in _capped(request, limit)])
    else:
        parser = MultiPartParser(request.headers, _capped(request, allowed), max_files=1, max_fields=10)
        try:
            form = await parser.parse()
        except MultiPartException as exc:
            raise ApiError(400, f"the multipart form cannot be read: {exc.message}", parameter="body") from None
        try:
            upload = form.get(FORM_FIELD)
            if not isinstance(upload, UploadFile):
                raise ApiError(
                    400, f"no file field {FORM_FIELD!r} in the form", parameter=FORM_FIELD, accepted="one file"
                )
            raw = await upload.read()
        finally:
            await form.close()  # every uploaded part's temporary file, not only ours
    if len(raw) > limit:
        raise _too_large(limit)
    if not raw:
        raise ApiError(400, "the request carries no package", parameter="body", accepted="an edXML package")
    return raw


@router.post(
    "/preflight",
    summary="Judge a package as the gateway would, keeping nothing",
    responses={
        **ERROR_RESPONSES,
        200: {"description": "The verification report (`gateway verify --json`)"},
        400: {"description": "No package in the request"},
        413: {"description": "Larger than [edxml] max_package_bytes"},
        503: {"description": "This server has no verifier"},
    },
    openapi_extra=_BODY,
)
async def preflight(
    request: Request,
    web: Annotated[WebDeps, Depends(deps)],
    _token: Annotated[TokenInfo, Depends(require("preflight"))],
) -> JSONResponse:
    """Verify the uploaded package under the policy in force and return the report."""
    if web.verifier is None:
        raise ApiError(503, "pre-flight needs a verifier, and this server was started without one")
    raw = await _package(request, web.settings.edxml.max_package_bytes)
    report = await verify_package(raw, web.verifier)
    return JSONResponse(report.to_json())

"""The archivist's read-only JSON API (``/api/v1``): the same queries as ``gateway log``, over HTTP.

=================================  ========  =====================================================
route                              scope     what
=================================  ========  =====================================================
``GET /messages``                  read      search (``gateway log search``); keyset pagination
``GET /messages/{id}``             read      one document's full record (``gateway log show``)
``GET /messages/{id}/original``    read      the mail exactly as received or sent (``message/rfc822``)
``GET /messages/{id}/evidence``    read      the evidence bundle (``gateway evidence``), a zip
``GET /reports/partners``          read      per sending agency (``gateway report partners``)
``POST /rules/replay``             admin     what a proposed policy would flip (``gateway rules replay``)
=================================  ========  =====================================================

Every query value is validated by the function the CLI uses (``gateway.archive.search.build_filter``),
and a refusal is a 400 naming the parameter and its accepted forms; an unknown parameter is a 400
too (a misspelt filter must not silently widen a search). Values reach the database only as bound
parameters through SQLAlchemy (``gateway.store.search``). Nothing here writes to the store or the
spool: replay judges in memory with a copy of the verifier on the proposed policy.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterable
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from gateway.archive.evidence import OriginalUnavailable, build_evidence
from gateway.archive.partners import partner_report
from gateway.archive.record import load_record, message_json
from gateway.archive.replay import replay
from gateway.archive.search import FilterError, build_filter, parse_when, search
from gateway.errors import ConfigError
from gateway.store import NotFound, SpoolError
from gateway.verify.policy import policy_from_toml
from gateway.web.auth import TokenInfo, require
from gateway.web.deps import WebDeps, deps
from gateway.web.errors import ERROR_RESPONSES, ApiError

__all__ = ["SEARCH_PARAMETERS", "router"]

router = APIRouter(tags=["receipt log"], responses=ERROR_RESPONSES)

SEARCH_PARAMETERS: Final = (
    "from",
    "to",
    "sender",
    "recipient",
    "code",
    "verdict",
    "direction",
    "text",
    "limit",
    "before_id",
)
_POLICY_LIMIT: Final = 1024 * 1024
"""A policy file is a few kilobytes; refuse anything that could not be one."""

Web = Annotated[WebDeps, Depends(deps)]
Reader = Annotated[TokenInfo, Depends(require("read"))]
Admin = Annotated[TokenInfo, Depends(require("admin"))]
Id = Annotated[int, Path(ge=1, description="the work item's id")]


def _only(request: Request, known: Iterable[str]) -> None:
    unknown = sorted(set(request.query_params) - set(known))
    if unknown:
        raise ApiError(
            400,
            f"unknown query parameter {unknown[0]!r}",
            parameter=unknown[0],
            accepted=", ".join(known) or "none",
        )


def _not_found(id: int) -> ApiError:
    return ApiError(404, f"no work item {id}", parameter="id", accepted="the id of an existing work item")


@router.get("/messages", summary="Search the receipt log (newest first)")
async def search_messages(
    *,
    request: Request,
    web: Web,
    _token: Reader,
    from_: Annotated[
        str | None, Query(alias="from", description="received at or after: 2025-03-14, ISO 8601, or an age (30d)")
    ] = None,
    to: Annotated[str | None, Query(description="received before (a date: through its end)")] = None,
    sender: Annotated[str | None, Query(description="sender OrganId, e.g. 000.00.00.G22")] = None,
    recipient: Annotated[str | None, Query(description="recipient OrganId")] = None,
    code: Annotated[str | None, Query(description="number/notation, exact: 123/UBND-VP")] = None,
    verdict: Annotated[str | None, Query(description="accepted, refused or deferred")] = None,
    direction: Annotated[str | None, Query(description="in or out")] = None,
    text: Annotated[str | None, Query(description="words that must all occur")] = None,
    limit: Annotated[str | None, Query(description="page size, 1-500 (default 50)")] = None,
    before_id: Annotated[str | None, Query(description="the `next` page: ids below this")] = None,
) -> JSONResponse:
    """Work items matching every filter; ``next`` is the URL of the following page, or null."""
    _only(request, SEARCH_PARAMETERS)
    try:
        flt = build_filter(
            from_=from_,
            to=to,
            sender=sender,
            recipient=recipient,
            code=code,
            verdict=verdict,
            direction=direction,
            text=text,
            limit=limit,
            before_id=before_id,
            now=web.clock.now(),
        )
        page = await search(web.store, flt)
    except FilterError as exc:
        raise ApiError(400, str(exc), parameter=exc.field, accepted=exc.accepted) from None
    following = None
    if page.next_before_id is not None:
        kept = [(k, v) for k, v in request.query_params.multi_items() if k != "before_id"]
        following = f"{request.url.path}?{urlencode([*kept, ('before_id', str(page.next_before_id))])}"
    return JSONResponse({"items": [message_json(m) for m in page.items], "next": following})


@router.get("/messages/{id}", summary="One document's full record: verdict, findings, timeline, chain")
async def show_message(id: Id, web: Web, _token: Reader) -> JSONResponse:
    """The record of ``gateway log show ID --json``."""
    try:
        record = await load_record(web.store, id, spool=web.spool)
    except NotFound:
        raise _not_found(id) from None
    return JSONResponse(record.to_json())


@router.get(
    "/messages/{id}/original",
    summary="The original mail, byte for byte",
    response_class=Response,
    responses={200: {"content": {"message/rfc822": {}}, "description": "the spooled mail"}},
)
async def original(id: Id, web: Web, _token: Reader) -> Response:
    """The mail exactly as received (or as the DMS handed it in), from the spool (its SHA-256 is checked)."""
    item = await web.store.get(id)
    if item is None:
        raise _not_found(id)
    try:
        mail = await web.spool.get(item.sha256)
    except SpoolError as exc:
        raise ApiError(410, f"the original of work item {id} cannot be given back: {exc}") from None
    return Response(
        mail,
        media_type="message/rfc822",
        headers={
            "Content-Disposition": f'attachment; filename="gateway-{id}.eml"',
            "X-Content-SHA256": item.sha256,
        },
    )


@router.get(
    "/messages/{id}/evidence",
    summary="The evidence bundle (zip): original, package, report, policy, journal rows, checker",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "the bundle"}},
)
async def evidence(id: Id, web: Web, _token: Reader) -> Response:
    """The zip ``gateway evidence ID`` writes; its own SHA-256 is in ``X-Content-SHA256``.

    When the spool cannot give back the original mail, the answer is 410 (as for ``/original``)
    naming the spool directory, never a bundle without it: that would not be evidence.
    """
    out = io.BytesIO()
    try:
        summary = await build_evidence(
            web.store,
            web.spool,
            id,
            out,
            anchors=web.settings.trust.anchors,
            intermediates=web.settings.trust.intermediates,
            max_attachment_bytes=web.settings.edxml.max_attachment_bytes,
            clock=web.clock,
        )
    except NotFound:
        raise _not_found(id) from None
    except OriginalUnavailable as exc:
        raise ApiError(410, f"no evidence bundle: {exc} (check [store] spool in the server's configuration)") from None
    headers = {
        "Content-Disposition": f'attachment; filename="gateway-{id}-evidence.zip"',
        "X-Content-SHA256": summary.sha256,
    }
    return Response(out.getvalue(), media_type="application/zip", headers=headers)


def _since(value: str | None, web: WebDeps) -> Any:
    if value is None:
        return None
    try:
        return parse_when(value, web.clock.now())
    except (FilterError, ValueError) as exc:
        raise ApiError(400, str(exc), parameter="since", accepted="2025-03-14, ISO 8601, or an age: 90d") from None


@router.get("/reports/partners", summary="Per sending agency: packages, verdicts, refusal codes, signers")
async def partners(
    request: Request,
    web: Web,
    _token: Reader,
    since: Annotated[str | None, Query(description="received at or after: 2025-03-14, ISO 8601, or 90d")] = None,
) -> JSONResponse:
    """The report of ``gateway report partners --json``."""
    _only(request, ("since",))
    report = await partner_report(web.store, since=_since(since, web))
    return JSONResponse(report.to_json())


@router.post(
    "/rules/replay",
    summary="What a proposed policy would have decided about the packages already received",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "the proposed policy file (TOML, like config/policy.toml)",
            "content": {"application/toml": {"schema": {"type": "string"}}},
        }
    },
)
async def replay_rules(
    request: Request,
    web: Web,
    _token: Admin,
    since: Annotated[str | None, Query(description="received at or after: 2025-03-14, ISO 8601, or 30d")] = None,
) -> JSONResponse:
    """Re-judge the stored originals under the posted policy; nothing is written."""
    _only(request, ("since",))
    if web.verifier is None:
        raise ApiError(503, "replay needs a verifier, and this server was started without one")
    body = await request.body()
    if len(body) > _POLICY_LIMIT:
        raise ApiError(413, "a policy file is at most 1 MiB", parameter="body")
    try:
        policy = policy_from_toml(body.decode("utf-8"), "<request body>")
    except UnicodeDecodeError:
        raise ApiError(400, "the policy is not UTF-8 text", parameter="body") from None
    except ConfigError as exc:
        raise ApiError(400, str(exc), parameter="body", accepted="a policy file like config/policy.toml") from None
    proposed = dataclasses.replace(web.verifier, policy=policy)  # shares the examiner and its cache
    result = await replay(web.store, web.spool, proposed, since=_since(since, web))
    return JSONResponse(result.to_json())

"""The archivist's pages: search the receipt log, open a document, download its original and evidence.

Server-rendered HTML from Jinja2 templates (``gateway/web/templates``, autoescaped; user data is
never marked safe), one stylesheet (``/static/pages.css``), no scripts: a ``<form method=get>``
searches, links paginate, buttons download through the JSON API's routes (which accept the
login cookie). Vietnamese by default, English on ``?lang=en`` (remembered in the ``lang``
cookie); every UI string is in :mod:`gateway.web.i18n`.

Routes (all read-only; pages need a token with the ``read`` scope, else they redirect to the
login form):

* ``GET /`` — the search form and, newest first, the matching documents; "older →" pages with
  ``before_id``. A bad filter value re-shows the form with the message next to its field (400).
* ``GET /documents/{id}`` — one work item: facts, verdict, findings in plain words, the
  timeline of its times (legal/system, sender-reported, signature, time-stamp), signatures,
  status trail, related mails, download buttons.
* ``GET /login``, ``POST /login`` — a token form; sets ``gateway_token`` (HttpOnly,
  SameSite=Strict, Secure over https). ``GET|POST /logout`` clears it.
* ``GET /static/pages.css`` — the stylesheet (no token needed: the login page uses it).

Errors on these routes are pages too (``error_page``, called by ``gateway.web.errors`` when
``is_page_request`` says so): the same status and ``Retry-After`` as the JSON answer, the same
headers as every page, a heading in plain words, a stable code, what to do next; never the
exception's text (that goes to the log).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any, Final, TypeVar
from urllib.parse import urlencode

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway.archive.record import load_record
from gateway.archive.search import FilterError, build_filter, search
from gateway.clock import iso_vn
from gateway.store import NotFound
from gateway.web.auth import COOKIE, authenticate
from gateway.web.deps import deps
from gateway.web.i18n import LANGUAGES, choose, words
from gateway.web.pageviews import document_view, result_row

__all__ = ["FIELDS", "LANG_COOKIE", "MACHINE_SEGMENTS", "error_page", "is_page_request", "router"]

router = APIRouter(include_in_schema=False)
_R = TypeVar("_R", bound=Response)

FIELDS: Final = ("from", "to", "sender", "recipient", "code", "verdict", "direction", "text")
"""The search form's inputs (the same names as the JSON API's query parameters)."""
_PAGING: Final = ("before_id", "limit")
"""Carried by the "older →" link (``limit`` only when a link or a bookmark sets it)."""
_FIELD_OF: Final = {"from_": "from", "since": "from", "until": "to", "before-id": "before_id"}
"""``FilterError.field`` → the form input it belongs to (other fields keep their name)."""
_ID: Final = re.compile(r"[1-9][0-9]{0,17}")
"""A work item id as a path segment (fits a 64-bit integer; anything else is simply not found)."""
LANG_COOKIE: Final = "lang"
_YEAR: Final = 365 * 24 * 3600
_HEADERS: Final = {
    # Nothing on these pages runs a script or loads from elsewhere; say so to the browser.
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Receipt-log pages are behind a token: no shared cache may keep them.
    "Cache-Control": "no-store",
}


_CODES: Final = {
    400: "bad-request",
    401: "login-required",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    503: "unavailable",
}
"""HTTP status → the stable code an error page shows (its words: ``err_<code>_*`` in ``i18n``).

Any other 4xx is ``refused``, any other 5xx ``internal-error``. Codes never change: an archivist
quotes them to the administrator.
"""

MACHINE_SEGMENTS: Final = frozenset({"api", "preflight", "metrics", "healthz", "openapi.json", "docs", "redoc"})
"""First path segments of what machines call (JSON API, pre-flight, ``/metrics``, ``/healthz``, the
schema): an error there is JSON, even on a path no route matches. A test checks that every route
outside this module lies under one of them."""


@cache
def _environment() -> jinja2.Environment:
    # Autoescape everything (every template is HTML); StrictUndefined turns a typo into an error.
    return jinja2.Environment(
        loader=jinja2.PackageLoader("gateway.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def _stylesheet() -> bytes:
    return resources.files("gateway.web").joinpath("static/pages.css").read_bytes()


def _language(request: Request) -> str:
    return choose(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE))


def _local_url(request: Request, **changes: str | int | None) -> str:
    """This page's path and query with ``changes`` applied (``None`` removes a parameter)."""
    params = {k: v for k, v in request.query_params.items() if k not in changes}
    params.update({k: str(v) for k, v in changes.items() if v is not None})
    query = urlencode(params)
    return request.url.path + (f"?{query}" if query else "")


def _safe_next(target: str | None) -> str:
    """A same-site path to return to after login (never another host: no open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def _render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render a page in the request's language, with the common headers and the ``lang`` cookie.

    ``headers`` are added to the common ones (which win: no caller loosens the CSP).
    """
    lang = _language(request)
    other = next(code for code in LANGUAGES if code != lang)
    html = (
        _environment()
        .get_template(template)
        .render(
            t=words(lang),
            lang=lang,
            other_lang=other,
            switch_url=_local_url(request, lang=other),
            signed_in=context.pop("signed_in", True),
            **context,
        )
    )
    return _remember_language(request, HTMLResponse(html, status_code=status, headers={**(headers or {}), **_HEADERS}))


def _remember_language(request: Request, response: _R) -> _R:
    """Keep a ``?lang=`` choice in the ``lang`` cookie (the language switch sets it)."""
    lang = request.query_params.get("lang")
    if lang in LANGUAGES:
        secure = request.url.scheme == "https"
        response.set_cookie(LANG_COOKIE, str(lang), max_age=_YEAR, samesite="lax", secure=secure, httponly=True)
    return response


def _login_url(request: Request) -> str:
    """The login form, returning to this page (its query kept as it came) once logged in."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login?" + urlencode({"next": target})


def _to_login(request: Request) -> RedirectResponse:
    # The language switch's choice is kept across the redirect: the login form speaks it too.
    return _remember_language(request, RedirectResponse(_login_url(request), status_code=303))


@router.get("/static/pages.css")
async def stylesheet() -> Response:
    """The pages' one stylesheet."""
    return Response(_stylesheet(), media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})


@router.get("/", response_class=HTMLResponse)
async def search_page(request: Request) -> Response:
    """The search form and its results (see the module docstring)."""
    if authenticate(request, "read") is None:
        return _to_login(request)
    web = deps(request)
    form = {name: request.query_params.get(name, "").strip() for name in (*FIELDS, *_PAGING)}
    values = {name: (value or None) for name, value in form.items()}
    try:
        flt = build_filter(
            from_=values["from"],
            to=values["to"],
            sender=values["sender"],
            recipient=values["recipient"],
            code=values["code"],
            verdict=values["verdict"],
            direction=values["direction"],
            text=values["text"],
            limit=values["limit"],
            before_id=values["before_id"],
            now=web.clock.now(),
        )
    except FilterError as exc:
        field = _FIELD_OF.get(exc.field, exc.field)
        t = words(_language(request))
        error = {"title": t["bad_value"], "text": str(exc)}
        return _render(
            request,
            "search.html",
            status=400,
            form=form,
            errors={field: error},
            shown_fields=FIELDS,
            problem=_problem(request, 400, t),
            **_no_results(),
        )
    page = await search(web.store, flt)
    older = None if page.next_before_id is None else _local_url(request, before_id=page.next_before_id, lang=None)
    newest = _local_url(request, before_id=None, lang=None) if form["before_id"] else None
    rows = [result_row(item, _language(request)) for item in page.items]
    return _render(
        request,
        "search.html",
        form=form,
        errors={},
        shown_fields=FIELDS,
        problem=None,
        rows=rows,
        older_url=older,
        newest_url=newest,
    )


def _no_results() -> dict[str, Any]:
    return {"rows": None, "older_url": None, "newest_url": None}


@router.get("/documents/{id}", response_class=HTMLResponse)
async def document_page(request: Request, id: str) -> Response:
    """One document's page (see the module docstring); an unknown id is a 404 page."""
    if authenticate(request, "read") is None:
        return _to_login(request)
    lang = _language(request)
    try:
        web = deps(request)
        record = await load_record(web.store, int(id), spool=web.spool) if _ID.fullmatch(id) else None
    except NotFound:
        record = None
    if record is None:
        return error_page(request, 404, text=words(lang)["missing"].format(id=id))
    return _render(request, "document.html", doc=document_view(record, lang))


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request) -> Response:
    """The token form."""
    return _render(
        request, "login.html", next=_safe_next(request.query_params.get("next")), failed=False, signed_in=False
    )


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    """Check the token; if it grants ``read``, set the cookie and go where the archivist was headed."""
    form: Mapping[str, Any] = await request.form()
    token = str(form.get("token") or "").strip()
    target = _safe_next(str(form.get("next") or "/"))
    info = deps(request).tokens.find(token) if token else None
    if info is None or "read" not in info.scopes:
        return _render(request, "login.html", status=401, next=target, failed=True, signed_in=False)
    request.state.token = info.name
    response = RedirectResponse(target, status_code=303)
    secure = request.url.scheme == "https"
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/")
    return response


@router.api_route("/logout", methods=["GET", "POST"])
async def logout(request: Request) -> Response:
    """Forget the token cookie and show the login form."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


def is_page_request(request: Request) -> bool:
    """Whether an error in ``request`` is answered with a page rather than JSON.

    Decided by the route, never by the ``Accept`` header (a browser opening ``/api/v1/...`` gets
    JSON): a route of this module is a page, any other route is not. A path no route matches is
    a page unless it lies under one of ``MACHINE_SEGMENTS`` (``/api/v2/x`` stays JSON).
    """
    endpoint = request.scope.get("endpoint")  # set by the router once a route matched (even by path only)
    if endpoint is not None:
        return endpoint in {route.endpoint for route in router.routes if isinstance(route, Route)}
    return request.url.path.lstrip("/").split("/", 1)[0] not in MACHINE_SEGMENTS


def _problem(request: Request, status: int, t: Mapping[str, str]) -> dict[str, Any]:
    """What an error page (or the search form's summary) says about ``status``: words, code, next steps."""
    code = _CODES.get(status, "internal-error" if status >= 500 else "refused")
    key = "err_" + code.replace("-", "_")
    back = ("/", t["back"])
    if code in ("login-required", "forbidden"):
        links = [(_login_url(request), t["err_login"]), back]
    elif code == "unavailable" and request.method == "GET":
        links = [(_local_url(request, lang=None), t["err_retry"]), back]
    else:
        links = [back]
    return {
        "status": status,
        "code": code,
        "title": t[f"{key}_title"],
        "text": t[f"{key}_text"],
        "next": t[f"{key}_next"],
        "field": None,
        "links": list(dict(links).items()),  # a retry of "/" is the way back too: one button
        "at": iso_vn(deps(request).clock.now()),
    }


def error_page(
    request: Request,
    status: int,
    *,
    text: str | None = None,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """An error as a page in the request's language, looking like the others.

    Args:
        request: the page request that failed.
        status: the HTTP status, shown with its stable code (``_CODES``) and answered as is.
        text: what went wrong, more precisely than the status's words (already in the page's
            language; never an exception's text).
        field: the request parameter to fix (a search form input is named by its label).
        headers: headers the JSON answer would carry (``Retry-After``, ``Allow``, ``WWW-Authenticate``).

    Returns:
        The page, with the pages' security headers.
    """
    t = words(_language(request))
    problem = _problem(request, status, t)
    if text is not None:
        problem["text"] = text
    if field is not None:
        name = _FIELD_OF.get(field, field)
        problem["field"] = t[name] if name in FIELDS else name
    signed_in = authenticate(request, "read") is not None
    return _render(request, "error.html", status=status, headers=headers, problem=problem, signed_in=signed_in)

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
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any, Final
from urllib.parse import urlencode

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway.archive.record import load_record
from gateway.archive.search import FilterError, build_filter, search
from gateway.store import NotFound
from gateway.web.auth import COOKIE, authenticate
from gateway.web.deps import deps
from gateway.web.i18n import LANGUAGES, choose, words
from gateway.web.pageviews import document_view, result_row

__all__ = ["FIELDS", "LANG_COOKIE", "router"]

router = APIRouter(include_in_schema=False)

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


def _render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a page in the request's language, with the common headers and the ``lang`` cookie."""
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
    response = HTMLResponse(html, status_code=status, headers=_HEADERS)
    if request.query_params.get("lang") in LANGUAGES:
        secure = request.url.scheme == "https"
        response.set_cookie(LANG_COOKIE, lang, max_age=_YEAR, samesite="lax", secure=secure, httponly=True)
    return response


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)


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
        error = {"title": words(_language(request))["bad_value"], "text": str(exc)}
        return _render(
            request, "search.html", status=400, form=form, errors={field: error}, shown_fields=FIELDS, **_no_results()
        )
    page = await search(web.store, flt)
    older = None if page.next_before_id is None else _local_url(request, before_id=page.next_before_id, lang=None)
    newest = _local_url(request, before_id=None, lang=None) if form["before_id"] else None
    rows = [result_row(item) for item in page.items]
    return _render(
        request, "search.html", form=form, errors={}, shown_fields=FIELDS, rows=rows, older_url=older, newest_url=newest
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
        return _render(request, "missing.html", status=404, id=id)
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

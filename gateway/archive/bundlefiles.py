"""The files of an evidence bundle: what each one is, safe names, JSON, templates and the zip.

Pure helpers of ``gateway.archive.evidence`` (no store, no spool): the README's one-line
description of every file (Vietnamese / English), file names made safe for every file system,
the JSON and template renderings, and the zip itself (fixed time stamps, ``chain/verify.py``
executable).
"""

from __future__ import annotations

import io
import json
import re
import unicodedata
import zipfile
from datetime import datetime
from functools import cache
from importlib.resources import files
from typing import Any, Final

import jinja2

from gateway.clock import to_vn

__all__ = ["ABOUT", "json_bytes", "render", "safe_name", "template_bytes", "zip_files"]

_UNSAFE: Final = re.compile(r"[^\w.-]+")
_EXECUTABLE: Final = frozenset({"chain/verify.py"})

ABOUT: Final = {
    "original-in": "Thư gốc đúng từng byte như cổng đã nhận / The mail exactly as the gateway received it",
    "original-out": "Thư đúng từng byte như cổng đã gửi / The mail exactly as the gateway sent it",
    "original-draft": "Thư bản thảo đúng từng byte như hệ thống QLVB gửi đến / The draft mail exactly as the DMS"
    " handed it in",
    "package": "Gói tin edXML trong thư, đúng từng byte / The edXML package in the mail, byte for byte",
    "sealed": "Gói tin đã ký số mà cổng gửi đi / The sealed package the gateway sent",
    "attachment": "Tệp đính kèm đã giải mã / A decoded attachment",
    "report.json": "Báo cáo kiểm tra như đã ghi nhận / The verification report as recorded",
    "report.html": "Báo cáo kiểm tra, dễ đọc / The verification report, readable",
    "policy": "Chính sách kiểm tra đã áp dụng / The verification policy the verdict was judged under",
    "entries": "Các dòng nhật ký chuỗi băm của mục này và đỉnh chuỗi lúc xuất / This item's hash-chained journal"
    " rows and the chain head at export",
    "verify": "Chương trình kiểm tra chuỗi băm (Python 3) / The hash-chain checker (Python 3)",
    "trust": "Chứng thư gốc/trung gian tin cậy / A trusted root or intermediate certificate",
    "readme": "Hướng dẫn kiểm tra / How to check this bundle",
    "sums": "SHA-256 của mọi tệp khác (sha256sum -c) / SHA-256 of every other file (sha256sum -c)",
}
"""What each file is, Vietnamese / English (the README's lines), by kind."""


def safe_name(name: str, taken: set[str], index: int) -> str:
    """A file name without directories or odd characters, unique in ``taken``."""
    base = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("-", base).strip(".-")[:100] or f"attachment-{index}"
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    candidate, number = base, 1
    while candidate.casefold() in taken:
        number += 1
        candidate = f"{stem}-{number}.{ext}" if ext else f"{stem}-{number}"
    taken.add(candidate.casefold())
    return candidate


def json_bytes(value: Any) -> bytes:
    """``value`` as indented UTF-8 JSON (sorted keys, non-ASCII kept) with a final newline."""
    return (json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("gateway.archive", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def template_bytes(name: str) -> bytes:
    """A template file's bytes as they are (``chain/verify.py`` is shipped, not rendered)."""
    return files("gateway.archive").joinpath("templates", name).read_bytes()


def render(name: str, **context: Any) -> bytes:
    """Render the template ``name`` with ``context`` (HTML autoescaped) to UTF-8."""
    return _environment().get_template(name).render(**context).encode("utf-8")


def zip_files(contents: dict[str, bytes], at: datetime) -> bytes:
    """A zip of ``contents`` in order, every entry dated ``at`` in Vietnam time."""
    buffer = io.BytesIO()
    stamp = to_vn(at).timetuple()[:6]
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in contents.items():
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o755 if name in _EXECUTABLE else 0o644) << 16
            archive.writestr(info, data)
    return buffer.getvalue()

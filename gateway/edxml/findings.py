"""Findings: what the format layer noticed about a package, as data.

A ``Finding`` has a stable kebab-case ``code`` (admins key their policy on it), a default
``severity`` (the policy in ``gateway.verify`` turns codes into actions), ``where`` it was
seen, and a Vietnamese and an English sentence a clerk understands, which say who must act.

Codes are declared once, here, as ``FindingKind`` entries; calling a kind with ``where`` and
its template parameters makes a finding. The catalogue is the single source for the README's
table of codes.
"""

from __future__ import annotations

import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "CATALOGUE",
    "Catalogue",
    "Finding",
    "FindingKind",
    "Severity",
    "iter_kinds",
    "kind",
]


class Severity(StrEnum):
    """How bad a finding is by default, before the admin's policy decides the action."""

    ERROR = "error"
    """The package is wrong; a strict policy refuses it."""
    WARNING = "warning"
    """Something a careful peer would not do; worth telling the sender."""
    INFO = "info"
    """A tolerated deviation seen on real peers (SDK quirks); recorded, not held against them."""


@dataclass(frozen=True)
class Finding:
    """One observation about a package."""

    code: str
    severity: Severity
    where: str
    message_vi: str
    message_en: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.code} at {self.where}: {self.message_en}"


@dataclass(frozen=True)
class FindingKind:
    """A catalogued finding code with its message templates (``str.format`` fields)."""

    code: str
    severity: Severity
    vi: str
    en: str

    def __call__(self, where: str, **params: object) -> Finding:
        """Make a finding of this kind.

        Raises:
            KeyError: when a template field is not given (a programming error).
        """
        return Finding(
            code=self.code,
            severity=self.severity,
            where=where,
            message_vi=self.vi.format(**params),
            message_en=self.en.format(**params),
        )

    def fields(self) -> frozenset[str]:
        """Names of the template fields the messages use."""
        names: set[str] = set()
        for template in (self.vi, self.en):
            names.update(f for _, f, _, _ in string.Formatter().parse(template) if f)
        return frozenset(names)


class Catalogue:
    """An append-only table of finding kinds, keyed by code.

    ``declare`` refuses a code twice (also across ``also_reserved``) and templates whose
    Vietnamese and English texts use different fields, so every message can be rendered in
    both languages from the same parameters.
    """

    def __init__(self, also_reserved: Mapping[str, FindingKind] | None = None) -> None:
        self._kinds: dict[str, FindingKind] = {}
        self._reserved = also_reserved or {}
        self.view: Mapping[str, FindingKind] = MappingProxyType(self._kinds)

    def declare(self, code: str, severity: Severity, vi: str, en: str) -> FindingKind:
        """Add a kind and return it.

        Raises:
            ValueError: a duplicate code, or templates with different fields.
        """
        entry = FindingKind(code, severity, vi, en)
        if code in self._kinds or code in self._reserved:
            raise ValueError(f"finding code {code!r} declared twice")
        vi_fields = frozenset(f for _, f, _, _ in string.Formatter().parse(vi) if f)
        if vi_fields != frozenset(f for _, f, _, _ in string.Formatter().parse(en) if f):
            raise ValueError(f"finding {code!r}: Vietnamese and English templates use different fields")
        self._kinds[code] = entry
        return entry


_TABLE = Catalogue()
_declare = _TABLE.declare

E, W, I = Severity.ERROR, Severity.WARNING, Severity.INFO  # noqa: E741 - table shorthand

# --- XML level: the bytes are not an XML document we are willing to read -----------------
XML_MALFORMED = _declare(
    "xml-malformed",
    E,
    "Gói tin không phải là tài liệu XML hợp lệ ({detail}). Đơn vị gửi cần kiểm tra phần mềm và gửi lại.",
    "The package is not well-formed XML ({detail}). The sender must check its software and send it again.",
)
XML_FORBIDDEN = _declare(
    "xml-forbidden-construct",
    E,
    "Gói tin chứa cấu trúc XML bị cấm vì lý do an toàn ({construct}). Đơn vị gửi cần gửi lại gói tin không có cấu trúc này.",
    "The package contains an XML construct refused for safety ({construct}). The sender must send it again without it.",
)
XML_TOO_LARGE = _declare(
    "xml-too-large",
    E,
    "Gói tin vượt quá giới hạn cho phép ({detail}). Đơn vị gửi cần chia nhỏ hoặc nén tệp đính kèm.",
    "The package exceeds a limit ({detail}). The sender must split it or reduce its attachments.",
)

# --- edXML structure ------------------------------------------------------------------
NOT_EDXML = _declare(
    "edxml-not-edxml",
    E,
    "Tài liệu XML không phải gói tin edXML theo QCVN 102:2016 ({detail}). Đơn vị gửi cần gửi đúng định dạng edXML.",
    "The XML document is not a QCVN 102:2016 edXML package ({detail}). The sender must send an edXML package.",
)
MISSING_FIELD = _declare(
    "edxml-missing-field",
    E,
    "Thiếu thông tin bắt buộc {field}. Đơn vị gửi cần bổ sung và gửi lại.",
    "The required field {field} is missing or empty. The sender must fill it in and send again.",
)
BAD_ORG_ID = _declare(
    "edxml-bad-org-id",
    E,
    'Mã định danh cơ quan "{value}" tại {field} không đúng định dạng QCVN 102:2016. Đơn vị gửi cần dùng mã định danh đúng.',
    'The organisation identifier "{value}" in {field} has neither QCVN 102:2016 format. The sender must use a valid code.',
)
BAD_VALUE = _declare(
    "edxml-bad-value",
    E,
    'Giá trị "{value}" của {field} không hợp lệ ({expected}). Đơn vị gửi cần sửa lại.',
    'The value "{value}" of {field} is not valid ({expected}). The sender must correct it.',
)
BAD_DATE = _declare(
    "edxml-bad-date",
    E,
    'Ngày giờ "{value}" của {field} không đọc được (định dạng đúng: {expected}). Đơn vị gửi cần sửa lại.',
    'The date "{value}" in {field} cannot be read (expected {expected}). The sender must correct it.',
)
LENIENT_DATE = _declare(
    "edxml-lenient-date",
    I,
    'Ngày giờ "{value}" của {field} không theo định dạng chuẩn {expected} nhưng vẫn đọc được.',
    'The date "{value}" in {field} is not in the standard form {expected}, but could be read.',
)
DATE_IN_FUTURE = _declare(
    "edxml-date-in-future",
    W,
    "Ngày ban hành {value} tại {field} ở tương lai. Đơn vị gửi cần kiểm tra lại.",
    "The promulgation date {value} in {field} lies in the future. The sender should check it.",
)
FIELD_TOO_LONG = _declare(
    "edxml-field-too-long",
    W,
    "Trường {field} dài {length} ký tự, vượt giới hạn {limit} ký tự thường dùng trên trục liên thông.",
    "The field {field} is {length} characters long, over the limit of {limit} that axis peers enforce.",
)
DUPLICATE_ELEMENT = _declare(
    "edxml-duplicate-element",
    E,
    "Phần tử {field} xuất hiện {count} lần, chỉ được phép một lần. Gói tin có thể đã bị chỉnh sửa; đơn vị gửi cần gửi lại.",
    "The element {field} appears {count} times where only one is allowed. The package may have been tampered with; the sender must send it again.",
)
UNKNOWN_ELEMENT = _declare(
    "edxml-unknown-element",
    I,
    "Phần tử {field} không thuộc QCVN 102:2016 và đã được bỏ qua.",
    "The element {field} is not part of QCVN 102:2016 and was ignored.",
)
MISPLACED_ELEMENT = _declare(
    "edxml-misplaced-element",
    W,
    "Phần tử {field} nằm sai vị trí ({detail}).",
    "The element {field} is in the wrong place ({detail}).",
)
LEGACY_NAMESPACE = _declare(
    "edxml-legacy-namespace",
    I,
    "Gói tin dùng không gian tên cũ {namespace} (trước QCVN 102:2016).",
    "The package uses the legacy namespace {namespace} (pre-QCVN 102:2016).",
)
FOREIGN_NAMESPACE = _declare(
    "edxml-foreign-namespace",
    W,
    "Phần tử {field} thuộc không gian tên lạ {namespace}; đã đọc theo tên cục bộ.",
    "The element {field} is in the unexpected namespace {namespace}; it was read by its local name.",
)
VARIANT_SPELLING = _declare(
    "edxml-variant-spelling",
    I,
    "Phần tử {found} được viết khác chuẩn ({expected}); đã chấp nhận.",
    "The element {found} is spelled differently from the standard ({expected}); accepted.",
)
SIGNATURE_NAMESPACE = _declare(
    "edxml-signature-namespace",
    I,
    "Phần tử Signature không thuộc không gian tên XMLDSig (lỗi thường gặp của bộ SDK).",
    "The Signature element is not in the XMLDSig namespace (a known SDK quirk).",
)
UNUSUAL_VALUE = _declare(
    "edxml-unusual-value",
    W,
    'Giá trị "{value}" của {field} nằm ngoài danh mục thường dùng ({expected}); một số hệ thống nhận có thể từ chối. Đơn vị gửi nên kiểm tra lại.',
    'The value "{value}" of {field} is outside the usual code list ({expected}); some receiving systems refuse it. The sender should check it.',
)
BUSINESS_INCONSISTENT = _declare(
    "edxml-business-inconsistent",
    W,
    "Gói tin có loại nghiệp vụ {value} ({field}) nhưng thiếu {expected}. Đơn vị gửi cần kiểm tra lại.",
    "The package has business type {value} ({field}) but no {expected}. The sender should check it.",
)
TEST_ORG_ID = _declare(
    "edxml-test-org-id",
    I,
    'Mã định danh "{value}" tại {field} là tài khoản thử nghiệm của trục VXP, không dùng cho văn bản thật.',
    'The identifier "{value}" in {field} is a VXP test account, not meant for real documents.',
)
STATUS_CODE_ALIAS = _declare(
    "edxml-status-code-alias",
    I,
    "Mã trạng thái {value} được hiểu là {expected} (lỗi đã biết của một số bộ SDK).",
    "Status code {value} was read as {expected} (a known SDK mistake).",
)

# --- attachments ----------------------------------------------------------------------
ATTACHMENT_MISMATCH = _declare(
    "edxml-attachment-mismatch",
    E,
    "Tệp đính kèm {field} không khớp giữa danh mục và nội dung ({detail}). Đơn vị gửi cần gửi lại gói tin.",
    "The attachment {field} does not match between the manifest and the payload ({detail}). The sender must send the package again.",
)
ATTACHMENT_DECODE = _declare(
    "edxml-attachment-decode",
    E,
    "Không giải mã được tệp đính kèm {field} ({detail}). Đơn vị gửi cần gửi lại gói tin.",
    "The attachment {field} cannot be decoded ({detail}). The sender must send the package again.",
)
ATTACHMENT_TOO_LARGE = _declare(
    "edxml-attachment-too-large",
    E,
    "Tệp đính kèm {field} vượt quá giới hạn {limit} byte. Đơn vị gửi cần giảm dung lượng tệp.",
    "The attachment {field} exceeds the limit of {limit} bytes. The sender must reduce its size.",
)
ATTACHMENT_TYPE = _declare(
    "edxml-attachment-type",
    W,
    "Tệp đính kèm {field} khai báo kiểu {declared} nhưng nội dung là {actual}; đã dùng kiểu theo nội dung.",
    "The attachment {field} is declared as {declared} but its content is {actual}; the content type was used.",
)

del E, W, I

CATALOGUE: Mapping[str, FindingKind] = _TABLE.view
"""Every finding code the format layer can produce, by code."""


def kind(code: str) -> FindingKind:
    """Look up a catalogued kind by code.

    Raises:
        KeyError: for an unknown code.
    """
    return CATALOGUE[code]


def iter_kinds() -> Iterator[FindingKind]:
    """All catalogued kinds, in declaration order."""
    return iter(CATALOGUE.values())

"""Refusal codes of the mail layer: the mail itself does not carry one package."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.edxml.findings import Catalogue, FindingKind, Severity
from gateway.verify.codes import ALL_KINDS

__all__ = ["CATALOGUE", "MAIL_NO_PACKAGE", "MAIL_SEVERAL_PACKAGES"]

_TABLE = Catalogue(also_reserved=ALL_KINDS)

MAIL_NO_PACKAGE = _TABLE.declare(
    "mail-no-package",
    Severity.ERROR,
    "Thư không kèm gói tin edXML nào. Đơn vị gửi cần gửi văn bản dưới dạng gói tin edXML đính kèm.",
    "The mail carries no edXML package. The sender must attach the document as an edXML package.",
)
MAIL_SEVERAL_PACKAGES = _TABLE.declare(
    "mail-several-packages",
    Severity.ERROR,
    "Thư kèm {count} gói tin edXML; mỗi thư chỉ được kèm một gói tin. Đơn vị gửi cần gửi từng gói tin trong một thư riêng.",
    "The mail carries {count} edXML packages; one per mail is allowed. The sender must send each package in its own mail.",
)

CATALOGUE: Mapping[str, FindingKind] = _TABLE.view
"""The mail layer's codes (always refused: there is nothing to verify)."""

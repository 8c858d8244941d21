"""Why a document was not sealed: stable codes, English and Vietnamese text, wire meaning.

Two outcomes other than a sealed PDF, both exceptions because sealing *could not be done*
(HOUSE.md rule 6) and both carrying a stable kebab-case ``code`` for logs, the CLI and the
outbound queue:

* ``SealingRefused`` (a ``PermanentError``): the request can never succeed as it stands — the
  organisation certificate is expired, revoked or untrusted, the main document has no valid
  signature of the authorised person, the file is not a readable PDF or accepts no further
  signature, a scanned copy is below the Decree 30 quality floor. The queue refuses the document and tells the sender.
* ``SealingDeferred`` (a ``TransientError``): something outside us cannot answer now — no
  revocation answer for a certificate (Decree 68 Art. 29 requires one: hard-fail), the TSA is
  down. The queue keeps the document and retries; nothing is signed or sent meanwhile.

Invariant: when either is raised, ``Sealer.seal_document`` has produced nothing at all.
"""

from __future__ import annotations

from types import MappingProxyType

from gateway.errors import PermanentError, TransientError

__all__ = ["REFUSALS", "SealingDeferred", "SealingRefused"]

REFUSALS = MappingProxyType(
    {
        # code: (English, Vietnamese)
        "org-cert-invalid": (
            "the organisation certificate cannot sign now (validity period, key usage, CA flag or key strength)",
            "Chứng thư số của cơ quan, tổ chức không hợp lệ để ký",
        ),
        "org-cert-revoked": (
            "the organisation certificate is revoked",
            "Chứng thư số của cơ quan, tổ chức đã bị thu hồi",
        ),
        "org-cert-untrusted": (
            "the organisation certificate does not chain to a pinned trust anchor",
            "Chứng thư số của cơ quan, tổ chức không tin cậy",
        ),
        "person-signature-missing": (
            "the main document carries no valid signature of the authorised person (Decree 30 Art. 32.2)",
            "Văn bản chưa có chữ ký số hợp lệ của người có thẩm quyền",
        ),
        "pdf-unreadable": (
            "the document is not a PDF that can be read and signed",
            "Không đọc được tệp PDF để ký số",
        ),
        "pdf-not-signable": (
            "the PDF does not accept another signature (e.g. certified with no changes allowed)",
            "Tệp PDF không cho phép ký thêm (ví dụ: đã chứng thực, cấm thay đổi)",
        ),
        "seal-text-unsupported": (
            "the seal's text has characters the signature font cannot show",
            "Nội dung chữ ký có ký tự phông chữ không hiển thị được",
        ),
        "copy-scan-quality": (
            "the scanned copy is below the Decree 30 floor (PDF 1.4 or later, colour, at least 200 dpi)",
            "Bản số hóa không đạt yêu cầu (PDF từ 1.4, màu, tối thiểu 200 dpi)",
        ),
        # Deferrals (retry later).
        "org-cert-revocation-unavailable": (
            "no revocation answer for the organisation certificate now; sealing waits",
            "Chưa kiểm tra được tình trạng thu hồi chứng thư số của cơ quan, tổ chức; sẽ ký lại sau",
        ),
        "person-cert-revocation-unavailable": (
            "no revocation answer for the authorised person's certificate now; sealing waits",
            "Chưa kiểm tra được tình trạng thu hồi chứng thư số của người ký; sẽ ký lại sau",
        ),
        "tsa-unavailable": (
            "the time-stamping service did not answer; sealing waits",
            "Máy chủ cấp dấu thời gian không phản hồi; sẽ ký lại sau",
        ),
    }
)
"""Every code either exception can carry, with its English and Vietnamese sentence."""


def _texts(code: str, detail: str) -> tuple[str, str]:
    english, vietnamese = REFUSALS[code]  # KeyError: an uncatalogued code is a programming error
    return (f"{english}: {detail}" if detail else english), vietnamese


class SealingRefused(PermanentError):
    """The document will not be sealed as it stands (nothing was produced).

    Args:
        code: a key of ``REFUSALS`` (e.g. ``org-cert-revoked``).
        detail: one English sentence with the specifics (subject, time, field...).

    Raises:
        KeyError: ``code`` is not catalogued.
    """

    def __init__(self, code: str, detail: str = "") -> None:
        self.code = code
        self.detail = detail
        message, self.vietnamese = _texts(code, detail)
        super().__init__(message)


class SealingDeferred(TransientError):
    """The document cannot be sealed now; retry later (nothing was produced).

    Args:
        code: a key of ``REFUSALS`` (e.g. ``tsa-unavailable``).
        detail: one English sentence with the specifics.

    Raises:
        KeyError: ``code`` is not catalogued.
    """

    def __init__(self, code: str, detail: str = "") -> None:
        self.code = code
        self.detail = detail
        message, self.vietnamese = _texts(code, detail)
        super().__init__(message)

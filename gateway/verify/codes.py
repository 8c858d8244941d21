"""Finding codes of the verification engine, with the texts a clerk reads (checklist §6 A1–A10).

The format layer's codes (``xml-*``, ``edxml-*``) live in ``gateway.edxml.findings``; these are
the judgement's own. ``ALL_KINDS`` is the union: every code a report can carry, the set an
admin's policy may name and the README's table of codes.

The wording follows what VGCA tools show clerks ("Chứng thư số đã bị thu hồi", "Tài liệu đã
bị thay đổi sau khi ký", "Chữ ký không được gắn dấu thời gian tin cậy") and ends by saying who
must act: the sender, its certificate authority, or us.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from gateway.edxml.findings import CATALOGUE as FORMAT_CATALOGUE
from gateway.edxml.findings import Catalogue, FindingKind, Severity

__all__ = ["ALL_KINDS", "CATALOGUE", "kind"]

_TABLE = Catalogue(also_reserved=FORMAT_CATALOGUE)
_declare = _TABLE.declare

E, W, I = Severity.ERROR, Severity.WARNING, Severity.INFO  # noqa: E741 - table shorthand

# --- the package and its addressing ---------------------------------------------------------
MISADDRESSED = _declare(
    "misaddressed",
    E,
    "Văn bản gửi sai nơi nhận: gói tin không gửi đến cơ quan nào có mã định danh {ours} (gửi đến: {recipients}). Đơn vị gửi cần kiểm tra lại nơi nhận (Nghị định 30/2020, Điều 21.2.b).",
    "The document was sent to the wrong recipient: it names none of our OrganIds {ours} (it names: {recipients}). The sender must check the recipients (Decree 30/2020 Art. 21.2.b).",
)
SENDER_MISMATCH = _declare(
    "sender-mismatch",
    E,
    "Chữ ký số của cơ quan ({subject}) không thuộc về đơn vị gửi {organ_id} theo danh bạ đã cấu hình. Đơn vị gửi cần ký bằng chứng thư số của chính cơ quan mình.",
    "The organisation signature ({subject}) does not belong to the sending agency {organ_id} according to the configured directory. The sender must sign with its own organisation certificate.",
)
ATTACHMENT_NOT_PDF = _declare(
    "attachment-not-pdf",
    I,
    "Tệp đính kèm {field} không phải tệp PDF nên không kiểm tra được chữ ký số.",
    "The attachment {field} is not a PDF, so its signatures cannot be checked.",
)

# --- the envelope signature -----------------------------------------------------------------
ENVELOPE_ABSENT = _declare(
    "envelope-signature-absent",
    I,
    "Gói tin edXML không có chữ ký số trên phong bì (chữ ký trên văn bản PDF vẫn được kiểm tra).",
    "The edXML envelope carries no signature (the signatures in the PDF documents are still checked).",
)
ENVELOPE_PLACEHOLDER = _declare(
    "envelope-signature-placeholder",
    I,
    "Chữ ký trên phong bì edXML chỉ là giá trị mẫu của bộ SDK ({detail}), không có giá trị xác thực.",
    "The edXML envelope signature is the SDK's placeholder ({detail}) and proves nothing.",
)
ENVELOPE_INVALID = _declare(
    "envelope-signature-invalid",
    E,
    "Chữ ký số trên phong bì edXML không hợp lệ ({detail}); gói tin có thể đã bị thay đổi sau khi ký. Đơn vị gửi cần gửi lại gói tin.",
    "The edXML envelope signature is invalid ({detail}); the package may have been changed after signing. The sender must send the package again.",
)

# --- PDF documents and their signatures -----------------------------------------------------
PDF_UNREADABLE = _declare(
    "pdf-unreadable",
    E,
    "Không đọc được tệp PDF {field} ({detail}). Đơn vị gửi cần kiểm tra tệp và gửi lại.",
    "The PDF file {field} cannot be read ({detail}). The sender must check the file and send it again.",
)
PDF_UNSIGNED = _declare(
    "pdf-unsigned",
    E,
    "Tệp {field} chưa được ký số. Đơn vị gửi cần ký số văn bản trước khi gửi.",
    "The file {field} is not digitally signed. The sender must sign the document before sending it.",
)
PDF_SIGNATURE_INVALID = _declare(
    "pdf-signature-invalid",
    E,
    "Chữ ký số {field} không hợp lệ: tài liệu đã bị thay đổi hoặc chữ ký bị hỏng ({detail}). Đơn vị gửi cần ký lại và gửi lại.",
    "The signature {field} is invalid: the document was altered or the signature is broken ({detail}). The sender must sign again and resend.",
)
PDF_MODIFIED = _declare(
    "pdf-modified-after-signing",
    E,
    "Tài liệu đã bị thay đổi sau khi ký ({detail}) tại {field}. Đơn vị gửi cần gửi lại bản đã ký, không chỉnh sửa.",
    "The document was changed after signing ({detail}) at {field}. The sender must send the signed version, unedited.",
)

# --- certificates ---------------------------------------------------------------------------
CERT_EXPIRED = _declare(
    "cert-expired",
    E,
    "Chứng thư số đã hết hạn sử dụng tại thời điểm ký {time} ({subject}, hết hạn {until}). Người ký cần gia hạn chứng thư số và ký lại.",
    "The certificate had expired at the signing time {time} ({subject}, valid until {until}). The signer must renew the certificate and sign again.",
)
CERT_NOT_YET_VALID = _declare(
    "cert-not-yet-valid",
    E,
    "Chứng thư số chưa có hiệu lực tại thời điểm ký {time} ({subject}, hiệu lực từ {since}). Người ký cần dùng chứng thư số đang có hiệu lực.",
    "The certificate was not yet valid at the signing time {time} ({subject}, valid from {since}). The signer must use a certificate that is in force.",
)
CERT_REVOKED = _declare(
    "cert-revoked",
    E,
    "Chứng thư số đã bị thu hồi ({subject}, thu hồi lúc {revoked}) trước thời điểm ký {time}. Chữ ký không có giá trị; đơn vị gửi cần ký lại bằng chứng thư số còn hiệu lực.",
    "The certificate was revoked ({subject}, at {revoked}) before the signing time {time}. The signature has no value; the sender must sign again with a certificate in force.",
)
CERT_UNTRUSTED = _declare(
    "cert-untrusted",
    E,
    "Chứng thư số không tin cậy: không có đường dẫn chứng thực hợp lệ đến chứng thư gốc được cấu hình ({subject}; {detail}). Đơn vị gửi cần dùng chứng thư số do Ban Cơ yếu Chính phủ cấp.",
    "The certificate is not trusted: no valid certification path to a configured root ({subject}; {detail}). The sender must use a certificate issued by the Government CA.",
)
CERT_KEY_USAGE = _declare(
    "cert-key-usage",
    E,
    "Chứng thư số không được phép dùng để ký số ({subject}; mục đích sử dụng: {usage}). Đơn vị gửi cần dùng chứng thư số ký số.",
    "The certificate may not be used for signing ({subject}; key usage: {usage}). The sender must use a signing certificate.",
)
CERT_IS_CA = _declare(
    "cert-is-ca",
    E,
    "Chứng thư số dùng để ký là chứng thư của tổ chức cung cấp dịch vụ chứng thực (CA), không được dùng để ký văn bản ({subject}).",
    "The signing certificate is a certification authority's certificate, which may not sign documents ({subject}).",
)
REVOCATION_UNAVAILABLE = _declare(
    "revocation-unavailable",
    W,
    "Chưa kiểm tra được tình trạng thu hồi của chứng thư số ({subject}; {detail}). Hệ thống sẽ tự kiểm tra lại; đơn vị gửi không cần gửi lại.",
    "The revocation status of the certificate could not be checked ({subject}; {detail}). We will check again automatically; the sender need not resend.",
)

# --- algorithms and time ----------------------------------------------------------------------
ALGORITHM_WEAK = _declare(
    "algorithm-weak",
    E,
    "Chữ ký số {field} dùng thuật toán không còn an toàn ({detail}). Đơn vị gửi cần ký lại với RSA từ 2048 bit hoặc ECDSA từ 256 bit và SHA-256 trở lên.",
    "The signature {field} uses an algorithm that is no longer safe ({detail}). The sender must sign again with RSA of 2048 bits or more, or ECDSA of 256 bits or more, and SHA-256 or stronger.",
)
ALGORITHM_LEGACY = _declare(
    "algorithm-legacy",
    W,
    "Chữ ký số {field} dùng thuật toán cũ ({detail}), được chấp nhận vì có dấu thời gian tin cậy trước {cutoff}.",
    "The signature {field} uses a legacy algorithm ({detail}), accepted because a trusted timestamp dates it before {cutoff}.",
)
TIMESTAMP_INVALID = _declare(
    "timestamp-invalid",
    W,
    "Dấu thời gian của chữ ký {field} không hợp lệ hoặc không tin cậy ({detail}); thời điểm ký được xác định theo thời điểm kiểm tra.",
    "The timestamp of the signature {field} is invalid or untrusted ({detail}); the signature was judged at the verification time.",
)
TIMESTAMP_ABSENT = _declare(
    "timestamp-absent",
    W,
    "Chữ ký {field} không được gắn dấu thời gian tin cậy; thời điểm ký được xác định theo thời điểm kiểm tra.",
    "The signature {field} carries no trusted timestamp; it was judged at the verification time.",
)

# --- Decree 30 Art. 5: who signed the main document -------------------------------------------
PERSON_MISSING = _declare(
    "person-signature-missing",
    E,
    "Văn bản {field} thiếu chữ ký số hợp lệ của người có thẩm quyền (Nghị định 30/2020, Điều 5). Đơn vị gửi cần bổ sung chữ ký và gửi lại.",
    "The document {field} lacks a valid signature of the authorised person (Decree 30/2020 Art. 5). The sender must add it and send again.",
)
ORG_MISSING = _declare(
    "org-signature-missing",
    E,
    "Văn bản {field} thiếu chữ ký số hợp lệ của cơ quan, tổ chức ban hành (Nghị định 30/2020, Điều 5). Đơn vị gửi cần ký số của cơ quan và gửi lại.",
    "The document {field} lacks a valid signature of the issuing organisation (Decree 30/2020 Art. 5). The sender must add the organisation signature and send again.",
)

del E, W, I

CATALOGUE: Mapping[str, FindingKind] = _TABLE.view
"""The verification engine's own codes."""

ALL_KINDS: Mapping[str, FindingKind] = MappingProxyType({**FORMAT_CATALOGUE, **CATALOGUE})
"""Every code a verification report can carry: format codes first, then judgement codes."""


def kind(code: str) -> FindingKind:
    """Look up any catalogued code.

    Raises:
        KeyError: for an unknown code.
    """
    return ALL_KINDS[code]

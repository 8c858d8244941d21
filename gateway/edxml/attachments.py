"""Attachments: names, types, the SDK's zip rule, magic bytes, and files for sending (spec §1.7).

Vocabulary shared by the reader (``gateway.edxml.parse_attachments``) and the builder:

* ContentIds are compared bare: ``bare_content_id`` strips an optional ``cid:`` and ``<…>``
  (the .NET SDK writes ``cid:`` only in the manifest);
* the SDK's zip rule, ``travels_zipped``: a payload declared ``application/zip`` under a name
  that is neither ``.zip`` nor an OOXML/ODF container is one file wrapped in a one-entry zip;
* ``sniff``: the magic bytes win over ContentType; ``type_contradiction`` turns a real
  contradiction with the declared type or the file extension into a warning
  (``edxml-attachment-type``). The SDK's non-standard types (``application/doc``,
  ``application/docx``, ``application/xsl``, ``application/xslx``) are not contradictions for
  their own extensions.

Writing. ``attachment_from_file`` gives real MIME types and, like the SDK, zips every file
that is not PDF/Office/zip (configurable); ``wire_bytes`` produces the deterministic bytes the
builder base64-encodes.
"""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile

from gateway.edxml import findings
from gateway.edxml.findings import Finding
from gateway.edxml.model import Attachment, normalise_text

__all__ = [
    "ZIP_MAGIC",
    "ZIP_TYPES",
    "attachment_from_file",
    "bare_content_id",
    "base_type",
    "extension",
    "label",
    "mime_type_for",
    "sniff",
    "travels_zipped",
    "type_contradiction",
    "wire_bytes",
]

ZIP_TYPES = frozenset({"application/zip", "application/x-zip-compressed", "application/x-zip"})
"""Declared types that mean "this payload is a zip" (the SDK writes ``application/zip``)."""

ZIP_MAGIC = b"PK\x03\x04"
"""Local file header signature: how every zip payload starts."""
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

# Zip containers that are documents in their own right: never unzipped by the reader.
_CONTAINER_EXTENSIONS = frozenset(
    {"zip", "docx", "docm", "dotx", "dotm", "xlsx", "xlsm", "xltx", "xltm", "pptx", "pptm", "ppsx", "potx"}
    | {"odt", "ods", "odp", "odg", "odf", "ott", "ots", "otp", "epub"}
)

_OOXML = "application/vnd.openxmlformats-officedocument."
_MIME_BY_EXTENSION: dict[str, str] = {
    "pdf": "application/pdf",
    "doc": "application/msword",
    "docx": _OOXML + "wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": _OOXML + "spreadsheetml.sheet",
    "ppt": "application/vnd.ms-powerpoint",
    "pptx": _OOXML + "presentationml.presentation",
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "odp": "application/vnd.oasis.opendocument.presentation",
    "rtf": "application/rtf",
    "zip": "application/zip",
    "rar": "application/vnd.rar",
    "7z": "application/x-7z-compressed",
    "gz": "application/gzip",
    "xml": "application/xml",
    "txt": "text/plain",
    "csv": "text/csv",
    "htm": "text/html",
    "html": "text/html",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "tif": "image/tiff",
    "tiff": "image/tiff",
}

# What the SDK sends as is (plus the other Office/ODF formats); everything else it zips.
_SENT_AS_IS = frozenset({"pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "odp", "zip"})

# Magic-byte families. A declared type or an extension names the families it may contain;
# a sniffed family outside that set is a contradiction. Unknown types judge nothing.
# .doc files are often RTF or HTML that Word saved under that name; Word opens all three.
_FAMILY_RULES: tuple[tuple[str, str, str], ...] = (
    # (declared types, extensions, families)
    ("application/pdf application/x-pdf", "pdf", "pdf"),
    ("application/msword application/doc", "doc dot", "ole2 rtf html"),
    ("application/vnd.ms-excel application/xls application/xsl", "xls xlt", "ole2"),
    ("application/vnd.ms-powerpoint", "ppt pps msg", "ole2"),
    (
        " ".join([*ZIP_TYPES, *(_MIME_BY_EXTENSION[e] for e in ("docx", "xlsx", "pptx", "odt", "ods", "odp"))])
        + " application/docx application/xlsx application/xslx application/pptx",
        " ".join(_CONTAINER_EXTENSIONS),
        "zip",
    ),
    ("image/png", "png", "png"),
    ("image/jpeg image/jpg image/pjpeg", "jpg jpeg", "jpeg"),
    ("image/gif", "gif", "gif"),
    ("image/tiff", "tif tiff", "tiff"),
    ("application/rtf text/rtf", "rtf", "rtf"),
    ("application/xml text/xml", "xml", "xml"),
    ("application/gzip application/x-gzip", "gz tgz", "gzip"),
    ("application/x-7z-compressed", "7z", "7z"),
    ("application/vnd.rar application/x-rar-compressed", "rar", "rar"),
)
_FAMILY_BY_TYPE = {t: frozenset(f.split()) for types, _, f in _FAMILY_RULES for t in types.split()}
_FAMILY_BY_EXTENSION = {e: frozenset(f.split()) for _, exts, f in _FAMILY_RULES for e in exts.split()}


def base_type(content_type: str | None) -> str:
    """The MIME type without parameters, lower case.

    Args:
        content_type: a declared type such as ``Application/PDF; name=x.pdf``, or ``None``.

    Returns:
        ``application/pdf``; ``""`` for ``None``.
    """
    return (content_type or "").split(";", 1)[0].strip().lower()


def extension(name: str | None) -> str:
    """The extension of a file name.

    Args:
        name: a file name, or ``None``.

    Returns:
        Lower case, without the dot; ``""`` when there is none (``README``, ``.profile``).
    """
    stem, dot, ext = (name or "").rpartition(".")
    return ext.strip().lower() if dot and stem else ""


def mime_type_for(name: str) -> str:
    """The real MIME type for a file name (not the SDK's invented ones).

    Args:
        name: the file name.

    Returns:
        e.g. ``application/msword`` for ``.doc``; ``application/octet-stream`` when unknown.
    """
    return _MIME_BY_EXTENSION.get(extension(name), "application/octet-stream")


def travels_zipped(name: str | None, content_type: str | None) -> bool:
    """Whether a zip payload under this name and declared type is the SDK's wrapping.

    Args:
        name: the AttachmentName.
        content_type: the declared ContentType.

    Returns:
        True when the type is a zip type and the name is not itself a zip or an OOXML/ODF
        container: such a payload is one file wrapped in a single-entry zip.
    """
    return base_type(content_type) in ZIP_TYPES and extension(name) not in _CONTAINER_EXTENSIONS


def bare_content_id(raw: str | None) -> str:
    """A ContentId as the model keeps it.

    Args:
        raw: the ContentId as written (``cid:209``, ``<cid:209>``, ``209``), or ``None``.

    Returns:
        The bare id (``209``); ``""`` for ``None``.
    """
    value = (raw or "").strip()
    for _ in range(2):
        if value.startswith("<") and value.endswith(">"):
            value = value[1:-1].strip()
        if value[:4].lower() == "cid:":
            value = value[4:].strip()
    return value


def label(name: str | None, content_id: str) -> str:
    """The ``where`` of an attachment finding.

    Args:
        name: the file name (``?`` when unknown).
        content_id: the bare ContentId.

    Returns:
        ``attachment "file.pdf" (cid:209)``.
    """
    return f'attachment "{name or "?"}" (cid:{content_id})'


# --------------------------------------------------------------------------- sniffing


def _sniff_zip(data: bytes) -> str:
    # ODF puts an uncompressed "mimetype" entry first; its content names the format.
    if data[30:38] == b"mimetype" and data[8:10] == b"\x00\x00":
        start = 30 + int.from_bytes(data[26:28], "little") + int.from_bytes(data[28:30], "little")
        size = int.from_bytes(data[18:22], "little")
        mime = data[start : start + min(size, 100)].decode("ascii", "replace")
        if mime.startswith("application/vnd.oasis.opendocument."):
            return mime
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return "application/zip"
    for marker, ext in (("word/document.xml", "docx"), ("xl/workbook.xml", "xlsx")):
        if marker in names:
            return _MIME_BY_EXTENSION[ext]
    if "ppt/presentation.xml" in names:
        return _MIME_BY_EXTENSION["pptx"]
    return "application/zip"


_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (_OLE2_MAGIC, "application/x-ole-storage"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"{\\rtf", "application/rtf"),
    (b"\x1f\x8b", "application/gzip"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"Rar!\x1a\x07", "application/vnd.rar"),
)
_SNIFFED_FAMILY = {
    "application/pdf": "pdf",
    "application/x-ole-storage": "ole2",
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/gif": "gif",
    "image/tiff": "tiff",
    "application/rtf": "rtf",
    "application/gzip": "gzip",
    "application/x-7z-compressed": "7z",
    "application/vnd.rar": "rar",
    "application/xml": "xml",
    "text/html": "html",
}


def sniff(data: bytes) -> str | None:
    """The MIME type the bytes themselves show.

    Args:
        data: the file (only its head is examined, except a zip's central directory).

    Returns:
        The type: PDF, zip (refined to OOXML/ODF when the archive says so), OLE2 (legacy
        doc/xls/ppt, reported as ``application/x-ole-storage``), PNG, JPEG, GIF, TIFF, RTF,
        gzip, 7z, RAR, XML or HTML; ``None`` for plain text and unknown formats.
    """
    if data.startswith((ZIP_MAGIC, b"PK\x05\x06")):
        return _sniff_zip(data)
    # PDF readers accept junk before the header within the first KiB, so the sniffer does too.
    if b"%PDF-" in data[:1024]:
        return "application/pdf"
    for magic, mime in _SIGNATURES:
        if data.startswith(magic):
            return mime
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<?xml"):
        return "application/xml"
    if head.startswith((b"<!doctype html", b"<html")):
        return "text/html"
    return None


def _family(mime: str) -> str:
    if mime == "application/zip" or mime.startswith((_OOXML, "application/vnd.oasis.")):
        return "zip"
    return _SNIFFED_FAMILY[mime]


def type_contradiction(att: Attachment, where: str, field: str) -> Finding | None:
    """``edxml-attachment-type`` when the bytes contradict the declared type or the extension.

    Args:
        att: the attachment as read (after unzipping; ``zipped`` says whether it was).
        where: the finding's location (see ``label``).
        field: how the message names the attachment.

    Returns:
        The warning, or ``None`` when the bytes show no known format or agree with the
        declarations that have an opinion.
    """
    if att.data is None:
        return None
    actual = sniff(att.data)
    if actual is None:
        return None
    family = _family(actual)
    expected: list[frozenset[str]] = []
    if not att.zipped:  # once unzipped, application/zip described the transport, not the file
        expected.append(_FAMILY_BY_TYPE.get(base_type(att.content_type), frozenset()))
    expected.append(_FAMILY_BY_EXTENSION.get(extension(att.name), frozenset()))
    if any(families and family not in families for families in expected):
        # Once unzipped, the declaration that counts is the one the name makes.
        declared = f"{mime_type_for(att.name) if att.zipped else att.content_type} ({att.name})"
        return findings.ATTACHMENT_TYPE(where, field=field, declared=declared, actual=actual)
    return None


# --------------------------------------------------------------------------- writing

# Fixed for reproducible bytes: zip's epoch, and a private namespace for entry names.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_ENTRY_NAMESPACE = uuid.UUID("7d6b1a52-3c1e-5b0c-9f38-0e5c1c6f2a10")


def attachment_from_file(
    name: str,
    data: bytes,
    *,
    content_id: str | None = None,
    description: str | None = None,
    zip_other_files: bool = True,
) -> Attachment:
    """Make an attachment for sending, with the real MIME type of the file.

    PDF, Word, Excel, PowerPoint, OpenDocument and zip files travel as they are; any other
    file is marked for the SDK's single-entry zip (``content_type`` ``application/zip``,
    ``zipped=True``) unless ``zip_other_files`` is false. The result is deterministic.

    Args:
        name: the file name shown to the recipient (``AttachmentName``).
        data: the file's bytes.
        content_id: the id linking manifest and payload; by default the first 32 hex digits of
            the data's SHA-256, so the same file gets the same id on every run.
        description: optional ``Description``.
        zip_other_files: follow the SDK and zip files that are not PDF/Office/zip.

    Returns:
        The attachment, ready for ``gateway.edxml.build``.

    Raises:
        ValueError: for an empty name, or a ``content_id`` the wire cannot carry.
    """
    clean_name = normalise_text(name)
    if clean_name is None:
        raise ValueError("attachment_from_file: the file name is empty; pass the name shown to the recipient")
    if content_id is None:
        content_id = hashlib.sha256(data).hexdigest()[:32]
    elif bare_content_id(content_id) != content_id or not content_id or any(c.isspace() for c in content_id):
        raise ValueError(
            f"attachment_from_file: content_id {content_id!r} must be a bare id without cid:, <>, or spaces"
        )
    ext = extension(clean_name)
    zipped = zip_other_files and ext not in _SENT_AS_IS
    return Attachment(
        content_id=content_id,
        name=clean_name,
        content_type="application/zip" if zipped else mime_type_for(clean_name),
        data=data,
        description=normalise_text(description),
        zipped=zipped,
    )


def wire_bytes(attachment: Attachment) -> bytes:
    """The bytes that travel base64-encoded: the file, or the SDK's single-entry zip of it.

    The zip is reproducible: entry ``<uuid5 of the content>.<ext>``, zip-epoch timestamp,
    fixed permissions and compression level.

    Args:
        attachment: an attachment with data.

    Returns:
        The payload bytes before base64.

    Raises:
        ValueError: when the attachment has no data.
    """
    if attachment.data is None:
        raise ValueError(f"{label(attachment.name, attachment.content_id)} has no data to send")
    if not attachment.zipped:
        return attachment.data
    ext = extension(attachment.name)
    entry_name = str(uuid.uuid5(_ENTRY_NAMESPACE, hashlib.sha256(attachment.data).hexdigest()))
    info = zipfile.ZipInfo(f"{entry_name}.{ext}" if ext else entry_name, date_time=_ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, whatever host builds it
    info.external_attr = 0o100644 << 16
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, attachment.data, compresslevel=6)
    return buffer.getvalue()

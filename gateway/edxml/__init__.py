"""The edXML wire format of QCVN 102:2016/BTTTT: model, tolerant parser, strict builder.

Pure: no sockets, no event loop, no database, no PDF machinery (an import-linter contract
checks it). Read ``spec/edxml.md`` for the format as real peers write it.
"""

from gateway.edxml.attachments import attachment_from_file, sniff
from gateway.edxml.build import BuildError, build
from gateway.edxml.checks import check_package, default_document_id
from gateway.edxml.findings import CATALOGUE, Finding, FindingKind, Severity
from gateway.edxml.meta import DocumentMeta, load_meta
from gateway.edxml.model import (
    Attachment,
    Business,
    BusinessDocType,
    BusinessDocumentInfo,
    DocumentCode,
    DocumentPackage,
    DocumentType,
    MessageHeader,
    Organization,
    OtherInfo,
    Package,
    PromulgationInfo,
    Receiver,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusCode,
    StatusPackage,
    TraceHeader,
    TraceHeaderList,
)
from gateway.edxml.orgid import OrganId, is_valid_organ_id
from gateway.edxml.parse import ParseResult, parse, parse_tree
from gateway.edxml.status import make_status
from gateway.edxml.xmlsafe import DEFAULT_LIMITS, XMLLimits, XMLRejected, parse_untrusted

__all__ = [
    "CATALOGUE",
    "DEFAULT_LIMITS",
    "Attachment",
    "BuildError",
    "Business",
    "BusinessDocType",
    "BusinessDocumentInfo",
    "DocumentCode",
    "DocumentMeta",
    "DocumentPackage",
    "DocumentType",
    "Finding",
    "FindingKind",
    "MessageHeader",
    "OrganId",
    "Organization",
    "OtherInfo",
    "Package",
    "ParseResult",
    "PromulgationInfo",
    "Receiver",
    "ReplacementInfo",
    "ResponseFor",
    "Severity",
    "SignerInfo",
    "StaffInfo",
    "StatusCode",
    "StatusPackage",
    "TraceHeader",
    "TraceHeaderList",
    "XMLLimits",
    "XMLRejected",
    "attachment_from_file",
    "build",
    "check_package",
    "default_document_id",
    "is_valid_organ_id",
    "load_meta",
    "make_status",
    "parse",
    "parse_tree",
    "parse_untrusted",
    "sniff",
]

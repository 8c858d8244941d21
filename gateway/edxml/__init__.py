"""The edXML wire format of QCVN 102:2016/BTTTT: model, tolerant parser, strict builder.

Pure: no sockets, no event loop, no database, no PDF machinery (an import-linter contract
checks it). Read ``spec/edxml.md`` for the format as real peers write it.
"""

from gateway.edxml.findings import CATALOGUE, Finding, FindingKind, Severity
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
from gateway.edxml.xmlsafe import DEFAULT_LIMITS, XMLLimits, XMLRejected, parse_untrusted

__all__ = [
    "CATALOGUE",
    "DEFAULT_LIMITS",
    "Attachment",
    "Business",
    "BusinessDocType",
    "BusinessDocumentInfo",
    "DocumentCode",
    "DocumentPackage",
    "DocumentType",
    "Finding",
    "FindingKind",
    "MessageHeader",
    "Organization",
    "OtherInfo",
    "Package",
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
    "parse_untrusted",
]

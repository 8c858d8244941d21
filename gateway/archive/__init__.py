"""The archivist's and the admin's views of the receipt log (read only).

Search, a document's full record and timeline, evidence bundles, rule replay and the partner
report. Shared by the CLI (``gateway log``, ``gateway evidence``, ``gateway rules replay``,
``gateway report``) and the HTTP surfaces (``gateway.web``). Nothing here writes to the store.
"""

from gateway.archive.evidence import EvidenceSummary, build_evidence
from gateway.archive.partners import PartnersReport, partner_report
from gateway.archive.record import DocumentRecord, TimelineEntry, load_record, message_json
from gateway.archive.replay import Flip, ReplayResult, replay
from gateway.archive.search import FilterError, SearchFilter, SearchPage, build_filter, parse_when, search

__all__ = [
    "DocumentRecord",
    "EvidenceSummary",
    "FilterError",
    "Flip",
    "PartnersReport",
    "ReplayResult",
    "SearchFilter",
    "SearchPage",
    "TimelineEntry",
    "build_evidence",
    "build_filter",
    "load_record",
    "message_json",
    "parse_when",
    "partner_report",
    "replay",
    "search",
]

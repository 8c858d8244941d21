"""The receipt log, the work queue and the spool of original mails (a leaf: no gateway layer above it).

See docs/design/mail-gateway.md §4. Entry points::

    store = await Store.open(resolve_url(settings.store.url, config_dir), clock=clock)
    spool = Spool(settings.store.spool)
"""

from gateway.store.db import resolve_url
from gateway.store.queue import Store
from gateway.store.records import (
    AlreadyRecorded,
    ChainCheck,
    Intake,
    InvalidTransition,
    JournalView,
    MessageView,
    NotFound,
    StatusEventView,
    StorageFull,
    StoreError,
)
from gateway.store.spool import Spool, SpoolCorrupted, Spooled, SpoolError, SpoolMissing, SpoolWriter
from gateway.store.tables import KINDS, STATES, TERMINAL

__all__ = [
    "KINDS",
    "STATES",
    "TERMINAL",
    "AlreadyRecorded",
    "ChainCheck",
    "Intake",
    "InvalidTransition",
    "JournalView",
    "MessageView",
    "NotFound",
    "Spool",
    "SpoolCorrupted",
    "SpoolError",
    "SpoolMissing",
    "SpoolWriter",
    "Spooled",
    "StatusEventView",
    "StorageFull",
    "Store",
    "StoreError",
    "resolve_url",
]

"""The archivist's and the admin's views of the receipt log (read only).

Search, a document's full record and timeline, evidence bundles, rule replay and the partner
report. Shared by the CLI (``gateway log``, ``gateway evidence``, ``gateway rules replay``,
``gateway report``) and the HTTP surfaces (``gateway.web``). Nothing here writes to the store.
"""

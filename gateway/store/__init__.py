"""The receipt log, the work queue and the spool of original mails (a leaf: no gateway layer above it).

See docs/design/mail-gateway.md §4.
"""

__all__: list[str] = []

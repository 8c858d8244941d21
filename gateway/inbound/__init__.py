"""Inbound edge: SMTP listener, IMAP poller, durable intake and delivery to the DMS.

Built in the mail-gateway milestone; nothing lives here yet.
"""

__all__: list[str] = []

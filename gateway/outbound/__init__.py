"""Outbound edge: submission listener for the DMS and the queue that sends to the axis.

Built in the mail-gateway milestone; nothing lives here yet.
"""

__all__: list[str] = []

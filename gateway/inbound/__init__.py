"""Inbound edge: mail from the axis into the durable intake, and accepted mail out to the DMS.

Modules: ``intake`` (spool, then commit the receipt row: the promise behind every 250),
``smtp`` (the ``[smtp]`` listener, with inline verdicts), ``imap`` and ``imapsession`` (the
``[imap]`` poller: IDLE, deadlines, exactly once via UID then MOVE), ``deliver`` (the DMS
targets: Maildir exactly once, SMTP/LMTP with ``X-Gateway-Id``). ``gateway.app`` wires them.
"""

__all__: list[str] = []

"""Outbound edge: drafts from the DMS in, sealed packages and notices out to mail servers.

Modules: ``submit`` (the ``[submission]`` listener: AUTH over TLS or allowed networks; scrypt
password hashes), ``send`` (the ``[axis]`` relay: SMTP with STARTTLS, or a Maildir sink).
``gateway.app`` wires them.
"""

__all__: list[str] = []

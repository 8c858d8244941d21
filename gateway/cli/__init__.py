"""The ``gateway`` command (composition layer: the only place that builds everything).

Importing a sub-command module registers it on ``app``; the list below is the whole CLI.
"""

from gateway.cli import devpki as _devpki  # noqa: F401  registers `gateway dev-pki`
from gateway.cli import edxml as _edxml  # noqa: F401  registers `gateway edxml`
from gateway.cli import rules as _rules  # noqa: F401  registers `gateway rules`
from gateway.cli import sign as _sign  # noqa: F401  registers `gateway sign` and `gateway package`
from gateway.cli import verify as _verify  # noqa: F401  registers `gateway verify`
from gateway.cli.app import app, main

__all__ = ["app", "main"]

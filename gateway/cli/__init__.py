"""The ``gateway`` command (composition layer: the only place that builds everything).

Importing a sub-command module registers it on ``app``; the list below is the whole CLI.
"""

from gateway.cli import db as _db  # noqa: F401  registers `gateway db`
from gateway.cli import demo as _demo  # noqa: F401  registers `gateway demo`
from gateway.cli import devpki as _devpki  # noqa: F401  registers `gateway dev-pki`
from gateway.cli import edxml as _edxml  # noqa: F401  registers `gateway edxml`
from gateway.cli import evidence as _evidence  # noqa: F401  registers `gateway evidence`
from gateway.cli import log as _log  # noqa: F401  registers `gateway log`
from gateway.cli import queue as _queue  # noqa: F401  registers `gateway queue`
from gateway.cli import report as _report  # noqa: F401  registers `gateway report`
from gateway.cli import rules as _rules  # noqa: F401  registers `gateway rules`
from gateway.cli import serve as _serve  # noqa: F401  registers `gateway serve`
from gateway.cli import sign as _sign  # noqa: F401  registers `gateway sign` and `gateway package`
from gateway.cli import tokens as _tokens  # noqa: F401  registers `gateway token`
from gateway.cli import users as _users  # noqa: F401  registers `gateway submission-user`
from gateway.cli import verify as _verify  # noqa: F401  registers `gateway verify`
from gateway.cli import web as _web  # noqa: F401  registers `gateway web`
from gateway.cli.app import app, main, name_arguments_by_metavar

__all__ = ["app", "main"]

name_arguments_by_metavar(app)  # every command is registered by now

"""A real Dovecot (Debian ``dovecot-imapd``) on loopback, with a throw-away configuration.

``shared_dovecot(config)`` starts one server per test session (kept in ``config.stash``, stopped
by ``config.add_cleanup``), so every test module that needs IMAP shares it. The server:

* reads only its own ``dovecot.conf`` (``dovecot -F -c``): its own ``base_dir``, ``state_dir``
  and log file in a temporary directory, ``protocols = imap``, IDLE on (Dovecot's default),
  ``maildir:~/Maildir``; a static passdb and userdb: every user name logs in with the server's
  one plaintext ``password`` and gets its own home, so tests take fresh users for free (a
  passwd-file would do too, but Dovecot re-reads it at most once a second);
* listens on two random ports of 127.0.0.1: ``port`` (plain, STARTTLS offered) and ``tls_port``
  (implicit TLS), with a certificate made for the session (``tests.mailtls``);
* also listens on 127.0.0.2-4 (all of 127/8 is loopback on Linux), where a ``local`` block
  narrows the post-login CAPABILITY: 127.0.0.2 has no MOVE (UIDPLUS kept), 127.0.0.3 has neither
  MOVE nor UIDPLUS, 127.0.0.4 has no IDLE — to drive the poller's fallbacks against a real server;
* as root: the master stays root, login processes run as ``dovenull``, internal ones as
  ``dovecot`` (users Debian's package creates), and mail processes as ``nobody`` (Dovecot refuses
  uid 0 for mail); the temporary directory is world-traversable and the mail directory belongs
  to ``nobody``. Not as root: everything runs as the current user, without chroots.

Each test takes a fresh mailbox user (``add_user``), so tests never see each other's mail;
``log_since(mark)`` shows what Dovecot logged during a test.
Missing Dovecot: skipped locally, a failure in CI (``CI=true``), like ``tests.external``.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import imaplib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from gateway.inbound.imap import ImapPoller
from gateway.inbound.imapsession import encode_mailbox, quote
from gateway.settings import ImapSettings
from tests.command import LogFile, terminate
from tests.mailtls import LoopbackTls, make_loopback_tls

__all__ = [
    "Dovecot",
    "MailUser",
    "imap_settings",
    "require_dovecot",
    "running",
    "running_dovecot",
    "shared_dovecot",
    "until",
]

NO_MOVE_HOST = "127.0.0.2"
BARE_HOST = "127.0.0.3"
NO_IDLE_HOST = "127.0.0.4"
_START_SECONDS = 15.0
_STASH: pytest.StashKey[Dovecot] = pytest.StashKey()


@dataclass(frozen=True)
class MailUser:
    """A mailbox on the test server."""

    name: str
    password: str


def require_dovecot() -> tuple[str, str]:
    """Paths of ``dovecot`` and ``doveadm``; skip (locally) or fail (in CI) when not installed."""
    dovecot = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").is_file() else None)
    doveadm = shutil.which("doveadm") or ("/usr/bin/doveadm" if Path("/usr/bin/doveadm").is_file() else None)
    if dovecot is not None and doveadm is not None:
        return dovecot, doveadm
    message = "dovecot is not installed (Debian package dovecot-imapd; `make test` as root installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI must provide it", pytrace=False)
    pytest.skip(message)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class Dovecot(LogFile):
    """One running Dovecot; see the module docstring."""

    host = "127.0.0.1"
    no_move_host = NO_MOVE_HOST
    bare_host = BARE_HOST
    no_idle_host = NO_IDLE_HOST

    def __init__(self, root: Path, dovecot: str, doveadm: str) -> None:
        self.root = root
        self._dovecot = dovecot
        self._doveadm = doveadm
        self.port, self.tls_port = _free_ports(2)
        self.config = root / "dovecot.conf"
        self._log = root / "dovecot.log"
        self.password = f"mat-khau.{os.urandom(6).hex()}"
        """Every user's password (a static passdb: users need no file, so each test takes a new one)."""
        self._mail = root / "mail"
        self._names = itertools.count(1)
        self._process: subprocess.Popen[bytes] | None = None
        self.tls: LoopbackTls = make_loopback_tls(root)
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            self._mail_ids = (nobody.pw_uid, nobody.pw_gid)
            self._internal_user, self._login_user = _system_user("dovecot"), _system_user("dovenull")
            self._internal_group = "dovecot" if self._internal_user == "dovecot" else "nogroup"
        else:
            self._mail_ids = (os.getuid(), os.getgid())
            self._internal_user = self._login_user = pwd.getpwuid(os.getuid()).pw_name
            self._internal_group = grp.getgrgid(os.getgid()).gr_name

    # ------------------------------------------------------------------ life
    def start(self) -> None:
        """Write the configuration, start the master in the foreground and wait for a greeting."""
        self.root.chmod(0o755)  # login, internal and mail users must reach their files
        self._mail.mkdir()
        os.chown(self._mail, *self._mail_ids)
        self.config.write_text(self._configuration())
        self._process = subprocess.Popen(
            [self._dovecot, "-F", "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + _START_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                error = self._process.stderr.read().decode() if self._process.stderr else ""
                raise RuntimeError(f"dovecot exited at start ({self._process.returncode}): {error}\n{self.log_text()}")
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=1) as probe:
                if probe.recv(100).startswith(b"* OK"):
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not greet within {_START_SECONDS:g} s\n{self.log_text()}")

    def stop(self) -> None:
        """SIGTERM the master (it stops its children) and wait for it; SIGKILL if it lingers."""
        process, self._process = self._process, None
        if process is None:
            return
        terminate(process)
        if process.stderr is not None:
            process.stderr.close()

    def _configuration(self) -> str:
        uid, gid = self._mail_ids
        root = self.root
        chroot = "" if os.geteuid() == 0 else "  chroot =\n"
        return f"""# Throw-away test configuration (tests/dovecot.py); never a system file.
base_dir = {root}/run
state_dir = {root}/state
instance_name = gateway-test-{os.getpid()}
protocols = imap
listen = {self.host}, {NO_MOVE_HOST}, {BARE_HOST}, {NO_IDLE_HOST}
log_path = {self.log}
default_internal_user = {self._internal_user}
default_login_user = {self._login_user}
default_internal_group = {self._internal_group}
first_valid_uid = 1
ssl = yes
ssl_cert = <{self.tls.cert}
ssl_key = <{self.tls.key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:~/Maildir
mailbox_idle_check_interval = 1 secs
passdb {{
  driver = static
  args = password={{PLAIN}}{self.password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={self._mail}/%n
}}
service imap-login {{
{chroot}  inet_listener imap {{
    port = {self.port}
  }}
  inet_listener imaps {{
    port = {self.tls_port}
    ssl = yes
  }}
}}
# No growing delay for an address that failed to log in (the wrong-password test would slow
# every later one): Dovecot's documented switch is an unusable anvil-auth-penalty socket.
service anvil {{
{chroot}  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
local {NO_MOVE_HOST} {{
  protocol imap {{
    imap_capability = IMAP4rev1 LITERAL+ IDLE UIDPLUS
  }}
}}
local {BARE_HOST} {{
  protocol imap {{
    imap_capability = IMAP4rev1 LITERAL+ IDLE
  }}
}}
local {NO_IDLE_HOST} {{
  protocol imap {{
    imap_capability = IMAP4rev1 LITERAL+ MOVE UIDPLUS
  }}
}}
"""

    # ------------------------------------------------------------------ users and logs
    def add_user(self) -> MailUser:
        """A new, empty mailbox (any name logs in with ``password``; its Maildir appears on first use)."""
        return MailUser(f"vanthu{next(self._names)}", self.password)

    @property
    def log(self) -> Path:
        """Dovecot's log file."""
        return self._log

    def log_text(self) -> str:
        """The whole log."""
        return self.log_since(0)

    # ------------------------------------------------------------------ administration
    def doveadm(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``doveadm -c <our config> args...``."""
        return subprocess.run(
            [self._doveadm, "-c", str(self.config), *args], capture_output=True, text=True, timeout=30, check=False
        )

    def kick(self, user: MailUser) -> str:
        """Disconnect every IMAP session of ``user`` (Dovecot sends ``* BYE`` and closes)."""
        done = self.doveadm("kick", user.name)
        return done.stdout + done.stderr

    def mailboxes(self, user: MailUser) -> list[str]:
        """The user's mailboxes, as Dovecot names them (UTF-8, decoded by Dovecot itself)."""
        done = self.doveadm("mailbox", "list", "-u", user.name)
        return sorted(done.stdout.splitlines())

    # ------------------------------------------------------------------ a second IMAP client
    @contextlib.contextmanager
    def client(self, user: MailUser) -> Iterator[imaplib.IMAP4]:
        """A logged-in stdlib IMAP client (not the code under test); logs out on exit."""
        imap = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            imap.login(user.name, user.password)
            yield imap
        finally:
            imap.logout()  # closes the socket even when LOGOUT itself fails

    def append(self, user: MailUser, raw: bytes, mailbox: str = "INBOX") -> int:
        """APPEND ``raw`` to ``mailbox``; returns its UID (from APPENDUID)."""
        with self.client(user) as imap:
            status, data = imap.append(quote(encode_mailbox(mailbox)), "", None, raw)
            assert status == "OK", data
            text = data[0].decode() if isinstance(data[0], bytes) else str(data[0])
            return int(text.split("APPENDUID ", 1)[1].split()[1].rstrip("]"))

    def messages(self, user: MailUser, mailbox: str = "INBOX") -> dict[int, tuple[bytes, str]]:
        """``{uid: (bytes, flags)}`` of every message in ``mailbox`` (read with BODY.PEEK)."""
        found: dict[int, tuple[bytes, str]] = {}
        with self.client(user) as imap:
            status, _ = imap.select(quote(encode_mailbox(mailbox)), readonly=True)
            assert status == "OK", f"cannot select {mailbox!r}"
            _, data = imap.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
            for item in data:
                if isinstance(item, tuple):
                    head = item[0].decode()
                    uid = int(head.split("UID ", 1)[1].split()[0])
                    flags = head.split("FLAGS (", 1)[1].split(")", 1)[0]
                    found[uid] = (item[1], flags)
        return found

    def uidvalidity(self, user: MailUser, mailbox: str = "INBOX") -> int:
        """The mailbox's UIDVALIDITY, read with STATUS."""
        with self.client(user) as imap:
            _, data = imap.status(quote(encode_mailbox(mailbox)), "(UIDVALIDITY)")
            text = data[0].decode() if isinstance(data[0], bytes) else str(data[0])
            return int(text.split("UIDVALIDITY ", 1)[1].split(")")[0])


def _system_user(name: str) -> str:
    """``name`` when the system has that user (Debian's dovecot package makes it), else ``nobody``."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        return "nobody"
    return name


@contextlib.contextmanager
def running_dovecot() -> Iterator[Dovecot]:
    """Start a Dovecot in a new temporary directory; stop it and remove the directory on exit."""
    dovecot, doveadm = require_dovecot()
    root = Path(tempfile.mkdtemp(prefix="gateway-dovecot-"))
    server = Dovecot(root, dovecot, doveadm)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def shared_dovecot(config: pytest.Config) -> Dovecot:
    """The session's Dovecot, started on first use and stopped when the session ends."""
    server = config.stash.get(_STASH, None)
    if server is None:
        stack = contextlib.ExitStack()
        try:
            server = stack.enter_context(running_dovecot())
        except RuntimeError as exc:
            pytest.fail(f"dovecot would not start: {exc}", pytrace=False)
        config.stash[_STASH] = server
        config.add_cleanup(stack.close)
    return server


# ---------------------------------------------------------------------- driving a poller against it
def imap_settings(
    server: Dovecot,
    user: MailUser,
    *,
    security: Literal["tls", "starttls", "none"] = "none",
    host: str | None = None,
    **changes: Any,
) -> ImapSettings:
    """``[imap]`` for ``user`` on ``server``, with test-sized deadlines unless ``changes`` say otherwise."""
    values: dict[str, Any] = {
        "host": host or server.host,
        "port": server.tls_port if security == "tls" else server.port,
        "security": security,
        "user": user.name,
        "done_mailbox": "Đã xử lý",
        "idle_renew_seconds": 30.0,
        "timeout_seconds": 2.0,
    }
    values.update(changes)
    return ImapSettings(**values)


async def until(condition: Callable[[], bool], what: str, seconds: float = 10.0) -> float:
    """Wait (polling every 20 ms) until ``condition()``; returns the seconds it took.

    Raises:
        AssertionError: not within ``seconds``.
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not condition():
        if loop.time() - start > seconds:
            raise AssertionError(f"not within {seconds:g} s: {what}")
        await asyncio.sleep(0.02)
    return loop.time() - start


@contextlib.asynccontextmanager
async def running(poller: ImapPoller) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``poller`` in a task for the block; ``stop()`` it after, and re-raise what ``run()`` raised."""
    task = asyncio.create_task(poller.run())
    try:
        yield task
    finally:
        await poller.stop()
        await task

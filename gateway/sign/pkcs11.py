"""The organisation key on a PKCS#11 token: a VGCA USB token (bit4id), an HSM; SoftHSM2 in tests.

Invariants, and why:

* The private key never leaves the token. We hold a handle; every signature, for PDFs (pyHanko's
  ``PKCS11Signer``) and for the envelope (``TokenRsaKey`` / ``TokenEcKey``, cryptography's
  signing interface for signxml), is computed by the token with ``C_Sign``.
* A key is opened once per process: one module load, one session, one login, reused for every
  document. Cryptoki keeps its state per process, not per object: ``C_Initialize`` and
  ``C_Finalize`` act on the whole process, and a token's login is shared by all sessions of the
  process. So the bookkeeping is process-wide too (``_MODULES``): a module is initialised by its
  first user and finalised by its last, and a token carries at most one open key.
* Every call into a module holds that module's lock. python-pkcs11 initialises modules with
  ``C_Initialize(NULL)``, which tells the module the application will not call it from several
  threads at once; python-pkcs11's own per-session lock only covers multi-part operations. Yet
  pyHanko signs in executor threads and the envelope is signed in worker threads, so token
  calls are serialised here (a USB token is a serial device anyway).
* Wrong PINs lock real tokens after a few tries. We never try a PIN when the token reports that
  the next wrong one would lock it, and say so (a restart loop must not burn the last try).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pkcs11
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass, TokenFlag
from pkcs11 import exceptions as p11_errors
from pyhanko.sign.pkcs11 import PKCS11Signer

from gateway.errors import ConfigError
from gateway.sign.keys import XmlSigningKey, order_chain
from gateway.sign.tokensign import ECDSA_HASHED, RSA_HASHED, TokenEcKey, TokenError, TokenKeyHandle, TokenRsaKey

if TYPE_CHECKING:
    from pkcs11._pkcs11 import lib as _Lib

__all__ = ["Pkcs11Key", "TokenEcKey", "TokenError", "TokenRsaKey"]

# --------------------------------------------------------------------------- process-wide modules


@dataclass(eq=False)
class _Module:
    """One loaded PKCS#11 module and who uses it."""

    path: str
    lib: _Lib
    lock: threading.RLock = field(default_factory=threading.RLock)
    """Held around every call into the module (see the module docstring)."""
    users: int = 0
    tokens: set[str] = field(default_factory=set)
    """Labels of the tokens that have an open key (login state is per token and process)."""


class _Modules:
    """The modules this process has loaded, their locks and users.

    python-pkcs11 itself keeps one ``pkcs11.lib`` per path for the life of the process (and
    ``pkcs11.lib(path)`` initialises it again after a ``C_Finalize``); this adds who uses it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[str, _Module] = {}

    def acquire(self, path: Path, token_label: str) -> _Module:
        """Initialise ``path`` if nobody uses it and reserve ``token_label`` on it."""
        key = str(path.resolve())
        with self._lock:
            module = self._loaded.get(key)
            try:
                # Loads the module, or runs C_Initialize again when its last user finalised it
                # (which re-reads the module's configuration, e.g. SOFTHSM2_CONF).
                lib = pkcs11.lib(key)
            except p11_errors.PKCS11Error as exc:
                raise ConfigError(f"cannot load the PKCS#11 module ({exc})", path=path) from None
            if module is None:
                module = self._loaded[key] = _Module(key, lib)
            if token_label in module.tokens:
                raise ConfigError(
                    f"the token {token_label!r} already has an open key in this process",
                    path=path,
                    hint="the organisation key is opened once per process; reuse it or close it first",
                )
            module.users += 1
            module.tokens.add(token_label)
            return module

    def release(self, module: _Module, token_label: str) -> None:
        """Give back a reservation; the last user finalises the module."""
        with self._lock:
            module.tokens.discard(token_label)
            module.users -= 1
            if module.users == 0:
                # Nothing is left to clean up if the module fails to finalise; pkcs11.lib()
                # initialises it again either way.
                with module.lock, contextlib.suppress(p11_errors.PKCS11Error):
                    module.lib.finalize()


_MODULES = _Modules()
"""Process-wide on purpose: it mirrors Cryptoki's own per-process state (see the docstring)."""


class _TokenPdfSigner(PKCS11Signer):
    """pyHanko's PKCS#11 signer, handed the objects we already found under the module lock.

    With the certificate and chain given and no certificates to pull, pyHanko touches the
    session only to find the key handle; we give it ours, whose ``sign`` takes the lock.
    """

    def __init__(self, handle: TokenKeyHandle, session: pkcs11.Session, cert: Any, chain: list[Any], raw: bool):
        self._token_key = handle
        super().__init__(
            session,
            signing_cert=cert,
            ca_chain=chain,
            other_certs_to_pull=(),
            use_raw_mechanism=raw,
        )
        # Load pyHanko's view of the objects now (it costs no token call): it then never needs
        # the session, nor an event loop's executor, to find them later.
        _ = self.signing_cert  # the property runs _load_objects()

    def _pull_signing_key_handle(self) -> TokenKeyHandle:
        return self._token_key


@dataclass(frozen=True)
class _Found:
    key: pkcs11.SignMixin
    key_label: str
    key_id: bytes
    certificate: x509.Certificate
    others: list[x509.Certificate]


def _attr(obj: pkcs11.Object, attribute: Attribute, default: Any) -> Any:
    try:
        return obj[attribute]
    except p11_errors.PKCS11Error:  # absent or sensitive on this token
        return default


def _describe(objects: Iterable[pkcs11.Object]) -> str:
    """``'label' (id 01), ...`` sorted by id: tokens return objects in no particular order."""
    found = sorted((bytes(_attr(o, Attribute.ID, b"")).hex(), str(_attr(o, Attribute.LABEL, ""))) for o in objects)
    return ", ".join(f"{label!r} (id {object_id or '-'})" for object_id, label in found) or "none"


def _open_session(token: pkcs11.Token, pin: str) -> pkcs11.Session:
    """Open the process's one session on ``token`` and log in (a seam the tests count)."""
    return token.open(user_pin=pin)


def _find_token(module: _Module, label: str) -> pkcs11.Token:
    tokens: list[pkcs11.Token] = []
    for slot in module.lib.get_slots(token_present=True):
        try:
            token = slot.get_token()
        except p11_errors.PKCS11Error:  # a reader without a usable card
            continue
        if token.flags & TokenFlag.TOKEN_INITIALIZED:  # SoftHSM2 always offers a blank one
            tokens.append(token)
    matching = [t for t in tokens if t.label == label]
    if len(matching) == 1:
        return matching[0]
    present = ", ".join(repr(t.label) for t in tokens) or "none (is the USB token plugged in?)"
    if matching:
        raise ConfigError(f"{len(matching)} tokens are labelled {label!r}; relabel one", path=module.path)
    raise ConfigError(
        f"no token labelled {label!r}; tokens present: {present}",
        path=module.path,
        hint="fix [sign] pkcs11_token_label",
    )


def _check_pin_state(token: pkcs11.Token) -> None:
    flags = token.flags
    if flags & TokenFlag.USER_PIN_LOCKED:
        raise ConfigError(
            f"the user PIN of token {token.label!r} is locked", hint="unlock it with the SO PIN (the vendor's tool)"
        )
    if flags & TokenFlag.USER_PIN_FINAL_TRY:
        raise ConfigError(
            f"one more wrong PIN locks token {token.label!r}; the gateway will not try it unattended",
            hint="check the PIN by hand (pkcs11-tool --login --test); a right PIN resets the counter",
        )


def _login(token: pkcs11.Token, pin: str) -> pkcs11.Session:
    _check_pin_state(token)
    try:
        return _open_session(token, pin)
    except (p11_errors.PinIncorrect, p11_errors.PinLenRange, p11_errors.PinInvalid):
        raise ConfigError(
            f"wrong PIN for token {token.label!r}",
            hint="check pkcs11_pin_env / pkcs11_pin_file before retrying: tokens lock after a few wrong PINs",
        ) from None
    except (p11_errors.PinLocked, p11_errors.PinExpired) as exc:
        raise ConfigError(f"the PIN of token {token.label!r} is unusable ({type(exc).__name__})") from None
    except p11_errors.UserAlreadyLoggedIn:
        raise ConfigError(f"token {token.label!r} is already logged in by other code in this process") from None
    except p11_errors.PKCS11Error as exc:
        raise ConfigError(f"cannot log in to token {token.label!r} ({type(exc).__name__} {exc})") from None


def _matches(key: pkcs11.SignMixin, cert: x509.Certificate) -> bool:
    public = cert.public_key()
    if key.key_type == KeyType.RSA:
        modulus = _attr(key, Attribute.MODULUS, None)
        return isinstance(public, rsa.RSAPublicKey) and (
            modulus is None or int.from_bytes(modulus, "big") == public.public_numbers().n
        )
    if key.key_type == KeyType.EC:
        params = _attr(key, Attribute.EC_PARAMS, None)
        spki = asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER)).public_key
        return isinstance(public, ec.EllipticCurvePublicKey) and (
            params is None or bytes(params) == spki["algorithm"]["parameters"].dump()
        )
    return False


def _find_objects(session: pkcs11.Session, label: str | None, key_id: bytes | None, where: str) -> _Found:
    keys = [
        k for k in session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}) if isinstance(k, pkcs11.SignMixin)
    ]
    certs = list(session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE}))
    listing = f"private keys: {_describe(keys)}; certificates: {_describe(certs)}"

    def label_of(obj: pkcs11.Object) -> str:
        return str(_attr(obj, Attribute.LABEL, ""))

    def id_of(obj: pkcs11.Object) -> bytes:
        return bytes(_attr(obj, Attribute.ID, b""))

    if key_id is not None:
        chosen = [k for k in keys if id_of(k) == key_id]
    else:
        chosen = [k for k in keys if label_of(k) == label]
        if not chosen:
            # Tokens often label the certificate and not the key (or differently): follow
            # CKA_ID, which PKCS#11 uses to pair a key with its certificate.
            ids = {id_of(c) for c in certs if label_of(c) == label} - {b""}
            chosen = [k for k in keys if id_of(k) in ids]
    wanted = f"id {key_id.hex()}" if key_id is not None else f"label {label!r}"
    if len(chosen) != 1:
        problem = "no private key" if not chosen else f"{len(chosen)} private keys"
        raise ConfigError(f"{problem} with {wanted} on {where}; {listing}", hint="fix [sign] pkcs11_key_label")
    key = chosen[0]
    paired = [c for c in certs if id_of(key) and id_of(c) == id_of(key)]
    if len(paired) != 1:
        paired = [c for c in certs if label_of(c) == label_of(key)]
    if len(paired) != 1:
        raise ConfigError(f"no certificate pairs with the private key {wanted} on {where}; {listing}")
    try:
        certificate = x509.load_der_x509_certificate(bytes(paired[0][Attribute.VALUE]))
        others = [x509.load_der_x509_certificate(bytes(c[Attribute.VALUE])) for c in certs if c is not paired[0]]
    except ValueError as exc:
        raise ConfigError(f"a certificate on {where} cannot be read ({exc})") from None
    if not _matches(key, certificate):
        raise ConfigError(f"the certificate {label_of(paired[0])!r} on {where} is not the private key's ({wanted})")
    return _Found(key, label_of(key), id_of(key), certificate, others)


def _abandon(module: _Module, token_label: str, session: pkcs11.Session | None) -> None:
    """Undo a half-done ``Pkcs11Key.open``: log out, close, release the module."""
    if session is not None:
        # Best effort: the open is failing anyway, and the release below must happen.
        with module.lock, contextlib.suppress(p11_errors.PKCS11Error):
            session.close()
    _MODULES.release(module, token_label)


class Pkcs11Key:
    """The organisation key on a PKCS#11 token; satisfies ``OrganisationKey``.

    Open it once per process (``Pkcs11Key.open``) and ``close()`` it at shutdown (or use it as a
    context manager): the session and login live as long as the object.
    """

    def __init__(
        self,
        *,
        module: _Module,
        token_label: str,
        session: pkcs11.Session,
        found: _Found,
        chain: tuple[x509.Certificate, ...],
        mechanisms: set[Mechanism],
        raw: bool,
        source: str,
    ) -> None:
        """Use ``Pkcs11Key.open``; this only assembles what it found."""
        self._module = module
        self._token_label = token_label
        self._session: pkcs11.Session | None = session
        self._certificate = found.certificate
        self._chain = chain
        self._source = source
        self.key_label = found.key_label
        """CKA_LABEL of the private key."""
        self.key_id = found.key_id
        """CKA_ID of the private key (pairs it with its certificate)."""
        self._handle = TokenKeyHandle(found.key, module.lock, source)
        public = found.certificate.public_key()
        self._xml_key: TokenRsaKey | TokenEcKey
        if isinstance(public, rsa.RSAPublicKey):
            raw = raw or RSA_HASHED["sha256"] not in mechanisms
            self._xml_key = TokenRsaKey(self._handle, public, mechanisms, raw)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            raw = raw or ECDSA_HASHED["sha256"] not in mechanisms
            self._xml_key = TokenEcKey(self._handle, public)
        else:  # _matches() admits RSA and EC keys only
            raise ConfigError(f"{source}: unsupported key type; use RSA or ECDSA")
        self.raw_mechanism = raw
        """Whether the token hashes (``CKM_SHA256_RSA_PKCS``) or we do (``CKM_RSA_PKCS``, ``CKM_ECDSA``)."""
        self._pdf_signer = _TokenPdfSigner(
            self._handle,
            session,
            asn1_x509.Certificate.load(found.certificate.public_bytes(Encoding.DER)),
            [asn1_x509.Certificate.load(c.public_bytes(Encoding.DER)) for c in chain],
            raw,
        )

    @classmethod
    def open(
        cls,
        module: Path,
        *,
        token_label: str,
        pin: bytes | str,
        key_label: str | None = None,
        key_id: bytes | None = None,
        intermediates: Sequence[x509.Certificate] = (),
        raw_mechanism: bool | None = None,
    ) -> Pkcs11Key:
        """Load the module, log in to the token and find the key, its certificate and chain.

        Args:
            module: the PKCS#11 module (``.so``), e.g. ``/usr/lib/softhsm/libsofthsm2.so``.
            token_label: the token's label (CK_TOKEN_INFO.label).
            pin: the user PIN (``read_secret`` gives bytes: UTF-8).
            key_label: CKA_LABEL of the private key, or of its certificate (the key is then the
                one with the certificate's CKA_ID).
            key_id: CKA_ID of the private key, instead of ``key_label``.
            intermediates: more certificates that may complete the chain (e.g. the pinned
                intermediates); the token's own certificates are always considered.
            raw_mechanism: ``True``: hash on the host and sign with ``CKM_RSA_PKCS`` /
                ``CKM_ECDSA`` (for tokens without hash-and-sign mechanisms); ``None``: decide
                from the token's mechanism list.

        Returns:
            The open key; the caller closes it.

        Raises:
            ConfigError: the module is missing or not a PKCS#11 module, no token has that label
                (the labels present are listed), the PIN is wrong or locked, no key or certificate
                has that label or id (the objects present are listed), or the token already has
                an open key in this process.
        """
        if (key_label is None) == (key_id is None):
            raise ConfigError("give the key's label or its id, not both")
        if not module.is_file():
            raise ConfigError(
                "PKCS#11 module not found", path=module, hint="install the token's driver or fix [sign] pkcs11_module"
            )
        try:
            pin_text = pin.decode() if isinstance(pin, bytes) else pin
        except UnicodeDecodeError:
            raise ConfigError(f"the PIN for token {token_label!r} is not UTF-8 text") from None
        loaded = _MODULES.acquire(module, token_label)
        session: pkcs11.Session | None = None
        try:
            with loaded.lock:
                token = _find_token(loaded, token_label)
                session = _login(token, pin_text)
                where = f"token {token_label!r}"
                found = _find_objects(session, key_label, key_id, where)
                try:
                    mechanisms = set(token.slot.get_mechanisms())
                except p11_errors.PKCS11Error:  # assume hash-and-sign, as pyHanko does
                    mechanisms = set(RSA_HASHED.values()) | set(ECDSA_HASHED.values())
            chain = order_chain(found.certificate, [*found.others, *intermediates])
            name = found.key_label or found.key_id.hex()
            return cls(
                module=loaded,
                token_label=token_label,
                session=session,
                found=found,
                chain=chain,
                mechanisms=mechanisms,
                raw=bool(raw_mechanism),
                source=f"PKCS#11 token {token_label!r} key {name!r} ({module})",
            )
        except p11_errors.PKCS11Error as exc:  # e.g. the token was pulled out while we looked
            _abandon(loaded, token_label, session)
            raise ConfigError(f"cannot open token {token_label!r} ({type(exc).__name__} {exc})", path=module) from None
        except BaseException:
            _abandon(loaded, token_label, session)
            raise

    @property
    def certificate(self) -> x509.Certificate:
        """The organisation certificate (read from the token)."""
        return self._certificate

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """Intermediates, nearest issuer first; never the anchor."""
        return self._chain

    @property
    def source(self) -> str:
        """The token, key and module, for messages."""
        return self._source

    @property
    def closed(self) -> bool:
        """Whether ``close()`` has run."""
        return self._session is None

    def pdf_signer(self) -> PKCS11Signer:
        """pyHanko's PKCS#11 signer for this key, chain embedded (one per key, thread-safe)."""
        return self._pdf_signer

    def xml_key(self) -> XmlSigningKey:
        """The envelope's signing key (a ``TokenRsaKey`` or ``TokenEcKey``), signing on the token."""
        return self._xml_key

    def close(self) -> None:
        """Log out, close the session and release the module (idempotent).

        Raises:
            TokenError: the token refused to log out or close (it is released anyway).
        """
        session, self._session = self._session, None
        if session is None:
            return
        try:
            with self._module.lock:
                self._handle.forget()
                session.close()  # C_Logout, C_CloseSession
        except p11_errors.PKCS11Error as exc:
            raise TokenError(f"{self._source}: closing the session failed ({type(exc).__name__})") from exc
        finally:
            _MODULES.release(self._module, self._token_label)

    def __enter__(self) -> Pkcs11Key:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

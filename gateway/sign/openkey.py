"""Open the organisation key that ``[sign]`` describes: a PKCS#12 file or a PKCS#11 token.

Called once per process by whoever composes the application; the key it returns is reused for
every document (and a ``Pkcs11Key`` is closed at shutdown).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

from cryptography import x509

from gateway.errors import ConfigError
from gateway.settings import SignSettings
from gateway.sign.keys import OrganisationKey, SigningKey, order_chain, read_pkcs12, read_secret
from gateway.sign.pkcs11 import Pkcs11Key

__all__ = ["open_organisation_key"]

_T = TypeVar("_T")


def _required(settings: SignSettings, name: str, value: _T | None) -> _T:
    if value is None:
        raise ConfigError(f'[sign] key = "{settings.key}" needs {name}')
    return value


def _secret(settings: SignSettings, env_name: str, file_name: str) -> bytes:
    env: str | None = getattr(settings, env_name)
    file: Path | None = getattr(settings, file_name)
    if (env is None) == (file is None):
        raise ConfigError(f'[sign] key = "{settings.key}" needs exactly one of {env_name} and {file_name}')
    return read_secret(env=env, file=file)


def open_organisation_key(settings: SignSettings, *, intermediates: Sequence[x509.Certificate] = ()) -> OrganisationKey:
    """Open the organisation key where ``settings.key`` says it lives.

    Args:
        settings: the ``[sign]`` section.
        intermediates: certificates that may complete the key's chain when its file or token
            lacks them (e.g. the pinned intermediates of ``[trust]``); unrelated ones are ignored.

    Returns:
        A ``SigningKey`` (``key = "pkcs12"``) or an open ``Pkcs11Key`` (``key = "pkcs11"``,
        which the caller closes at shutdown).

    Raises:
        ConfigError: a setting the key needs is missing (named in the message), the password or
            PIN cannot be read, or the key cannot be opened (see ``read_pkcs12`` and
            ``Pkcs11Key.open``).
    """
    if settings.key == "pkcs12":
        path = _required(settings, "pkcs12", settings.pkcs12)
        key = read_pkcs12(path, _secret(settings, "pkcs12_password_env", "pkcs12_password_file"))
        chain = order_chain(key.certificate, [*key.chain, *intermediates])
        if chain == key.chain:
            return key
        return SigningKey(key.private_key, key.certificate, chain, source=key.source)
    module = _required(settings, "pkcs11_module", settings.pkcs11_module)
    token_label = _required(settings, "pkcs11_token_label", settings.pkcs11_token_label)
    key_label = _required(settings, "pkcs11_key_label", settings.pkcs11_key_label)
    pin = _secret(settings, "pkcs11_pin_env", "pkcs11_pin_file")
    return Pkcs11Key.open(module, token_label=token_label, pin=pin, key_label=key_label, intermediates=intermediates)

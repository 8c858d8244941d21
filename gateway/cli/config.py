"""Finding and loading ``gateway.toml`` for the command line.

Search order, first match wins: ``--config PATH``, the ``GATEWAY_CONFIG`` environment
variable, ``./gateway.toml``. With none of them the built-in defaults apply (enough for the
edXML tools; the services need a real file and say so).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from gateway.errors import ConfigError
from gateway.settings import Settings, settings_from_toml

__all__ = ["ConfigOption", "find_config", "load_settings"]

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="gateway.toml to use (default: $GATEWAY_CONFIG, then ./gateway.toml, then built-in defaults).",
        dir_okay=False,
    ),
]
"""The ``--config`` option every command takes."""


def find_config(explicit: Path | None) -> Path | None:
    """The configuration file to read, per the search order, or ``None`` for defaults."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get("GATEWAY_CONFIG")
    if from_env:
        return Path(from_env)
    local = Path("gateway.toml")
    return local if local.is_file() else None


def load_settings(explicit: Path | None) -> Settings:
    """Load the settings the command should use.

    Raises:
        ConfigError: the named file cannot be read or is invalid.
    """
    path = find_config(explicit)
    if path is None:
        return Settings()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        # Named by --config or $GATEWAY_CONFIG (./gateway.toml is only taken when it exists).
        relative = "" if path.is_absolute() else f"; a relative path starts in the working directory, {Path.cwd()}"
        raise ConfigError(
            "configuration file not found",
            path=path,
            hint="name an existing gateway.toml with --config PATH or the GATEWAY_CONFIG environment variable"
            + relative,
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the configuration file ({exc})", path=path) from None
    return settings_from_toml(text, path)

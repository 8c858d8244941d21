"""The shipped configuration files load, and say the truth about the defaults."""

from __future__ import annotations

from pathlib import Path

from gateway.settings import EdxmlSettings, settings_from_toml

CONFIG = Path(__file__).resolve().parents[1] / "config"


def test_gateway_toml_loads_and_documents_the_real_defaults() -> None:
    path = CONFIG / "gateway.toml"
    settings = settings_from_toml(path.read_text(encoding="utf-8"), path)
    assert settings.identity.organ_ids == ("000.00.01.H53",)
    # Every [edxml] value the file shows is marked as the default: keep them equal.
    assert settings.edxml == EdxmlSettings()

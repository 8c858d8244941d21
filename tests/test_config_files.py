"""The shipped configuration files load, and say the truth about the defaults."""

from __future__ import annotations

from pathlib import Path

from gateway.settings import (
    EdxmlSettings,
    HttpSettings,
    QueueSettings,
    SmtpSettings,
    SubmissionSettings,
    settings_from_toml,
)

CONFIG = Path(__file__).resolve().parents[1] / "config"


def test_gateway_toml_loads_and_documents_the_real_defaults() -> None:
    path = CONFIG / "gateway.toml"
    settings = settings_from_toml(path.read_text(encoding="utf-8"), path)
    assert settings.identity.organ_ids == ("000.00.01.H53",)
    # Every value of these tables the file shows is the default: keep them equal.
    assert settings.edxml == EdxmlSettings()
    assert settings.smtp == SmtpSettings()
    assert settings.submission == SubmissionSettings()
    assert settings.queue == QueueSettings()
    assert settings.http == HttpSettings()


def test_every_commented_example_line_is_a_valid_key() -> None:
    """Uncommenting any ``# key = value`` example yields a file the gateway accepts (no stale keys)."""
    path = CONFIG / "gateway.toml"
    lines = path.read_text(encoding="utf-8").splitlines()
    table = None
    for number, line in enumerate(lines):
        stripped = line.removeprefix("# ")
        if stripped.startswith("[") and stripped.rstrip().endswith("]"):
            table = stripped.strip()
            continue
        if not line.startswith("# ") or " = " not in stripped or stripped[0] in " <" or table is None:
            continue
        key, _, value = stripped.partition(" = ")
        if not key.replace("_", "").isalnum():
            continue
        text = f"{table}\n{key} = {value}\n"
        try:
            settings_from_toml(text, path)
        except Exception as exc:  # name the line that broke
            raise AssertionError(f"config/gateway.toml:{number + 1}: {line!r} does not load: {exc}") from exc

"""Relative paths in ``gateway.toml`` resolve once, against the file's directory, however it is named.

``make run`` writes ``var/gateway.toml`` with ``spool = "spool"`` and serves it as
``--config var/gateway.toml``: a relative configuration path. The spool must then be
``var/spool``, the place an operator reaches with ``--config gateway.toml`` from ``var/`` or
with an absolute path; it once came out as ``var/var/spool`` (a written value equal to the
default was resolved a second time), so ``gateway evidence`` run another way found no original
mail.
"""

from __future__ import annotations

import re
import shutil
import typing
import zipfile
from pathlib import Path

import pytest

from gateway.settings import Settings, settings_from_toml
from gateway.store import resolve_url
from tests.archive.seeded import SeededLog
from tests.command import gateway

RELATIVE = Path("var/gateway.toml")
ABSOLUTE = Path("/etc/edxml-gateway/gateway.toml")


def _spool(text: str, source: Path) -> Path:
    return settings_from_toml(text, source).store.spool


@pytest.mark.parametrize(
    ("written", "source", "expected"),
    [
        # The value make run writes: beside the file, once.
        ('spool = "spool"', RELATIVE, Path("var/spool")),
        ('spool = "spool"', ABSOLUTE, Path("/etc/edxml-gateway/spool")),
        # Written out equal to the default's text: still relative to the file, once.
        ('spool = "var/spool"', RELATIVE, Path("var/var/spool")),
        ('spool = "var/spool"', ABSOLUTE, Path("/etc/edxml-gateway/var/spool")),
        ('spool = "var/spool"', Path("gateway.toml"), Path("var/spool")),
        # Different from the default.
        ('spool = "queue/spool"', RELATIVE, Path("var/queue/spool")),
        ('spool = "queue/spool"', ABSOLUTE, Path("/etc/edxml-gateway/queue/spool")),
        # Up and out of the file's directory.
        ('spool = "../data/spool"', RELATIVE, Path("var/../data/spool")),
        ('spool = "../data/spool"', Path("../etc/gateway.toml"), Path("../etc/../data/spool")),
        ('spool = "../data/spool"', ABSOLUTE, Path("/etc/edxml-gateway/../data/spool")),
        # Absolute: taken as written, whatever names the file.
        ('spool = "/srv/gateway/spool"', RELATIVE, Path("/srv/gateway/spool")),
        ('spool = "/srv/gateway/spool"', ABSOLUTE, Path("/srv/gateway/spool")),
        # Not written: the default, beside the file.
        ("", RELATIVE, Path("var/var/spool")),
        ("", ABSOLUTE, Path("/etc/edxml-gateway/var/spool")),
        ("", Path("gateway.toml"), Path("var/spool")),
    ],
)
def test_the_spool_resolves_once_against_the_files_directory(written: str, source: Path, expected: Path) -> None:
    assert _spool(f"[store]\n{written}\n", source) == expected


def test_a_written_value_is_the_same_place_whichever_path_names_the_file(tmp_path: Path) -> None:
    text = '[store]\nspool = "spool"\n'
    named_from_above = tmp_path / "etc" / ".." / "var" / "gateway.toml"
    places = {
        tmp_path / _spool(text, RELATIVE),  # from tmp_path: var/gateway.toml
        (tmp_path / "var") / _spool(text, Path("gateway.toml")),  # from var/: gateway.toml
        (tmp_path / "other") / _spool(text, Path("../var/gateway.toml")),  # from other/: ../var/
        _spool(text, tmp_path / "var" / "gateway.toml"),
        _spool(text, named_from_above),
    }
    (tmp_path / "etc").mkdir()
    (tmp_path / "other").mkdir()
    assert {place.resolve() for place in places} == {(tmp_path / "var" / "spool").resolve()}


def _path_keys() -> list[tuple[str, str, bool]]:
    """Every ``[section] key`` whose value is a path: ``(section, key, is_a_list)``."""
    keys = []
    for section, cls in typing.get_type_hints(Settings).items():
        for key, hint in typing.get_type_hints(cls).items():
            if typing.get_origin(hint) is tuple and typing.get_args(hint)[0] is Path:
                keys.append((section, key, True))
            elif hint is Path or Path in typing.get_args(hint):
                keys.append((section, key, False))
    return keys


PATH_KEYS = _path_keys()


def test_every_path_setting_is_found() -> None:
    found = {f"{section}.{key}" for section, key, _ in PATH_KEYS}
    assert {
        "store.spool",
        "verify.policy",
        "verify.directory",
        "http.tokens",
        "submission.users_file",
        "dev.pki",
        "trust.anchors",
        "sign.pkcs12",
        "sign.font",
        "imap.ca_file",
    } <= found


@pytest.mark.parametrize("source", [RELATIVE, ABSOLUTE, Path("../conf/gateway.toml")], ids=str)
@pytest.mark.parametrize("template", ["x/{key}", "var/spool", "../{key}", "/abs/{key}"])
def test_every_path_setting_resolves_once(source: Path, template: str) -> None:
    """Each path key written in the file: beside the file once (or as written when absolute)."""
    tables: dict[str, list[str]] = {}
    for section, key, is_list in PATH_KEYS:
        written = f'"{template.format(key=key)}"'
        tables.setdefault(section, []).append(f"{key} = [{written}]" if is_list else f"{key} = {written}")
    text = "\n".join(f"[{section}]\n" + "\n".join(lines) for section, lines in tables.items())
    settings = settings_from_toml(text, source)
    for section, key, is_list in PATH_KEYS:
        value = getattr(getattr(settings, section), key)
        written_path = Path(template.format(key=key))
        expected = written_path if written_path.is_absolute() else source.parent / written_path
        assert (value[0] if is_list else value) == expected, f"[{section}] {key}"


def test_a_relative_sqlite_url_resolves_once_too(tmp_path: Path) -> None:
    """``[store] url`` is a string: the commands resolve it against the file's directory."""
    settings = settings_from_toml('[store]\nurl = "sqlite+aiosqlite:///gateway.db"\n', RELATIVE)
    assert settings.store.url == "sqlite+aiosqlite:///gateway.db"  # not resolved while reading
    resolved = resolve_url(settings.store.url, tmp_path / "var")
    assert resolved == f"sqlite+aiosqlite:///{tmp_path / 'var' / 'gateway.db'}"
    assert resolve_url(resolved, tmp_path / "elsewhere") == resolved  # an absolute one is left alone


# ------------------------------------------------------------------ the commands, end to end


def _relocated(seeded: SeededLog, root: Path) -> Path:
    """A copy of the seeded gateway under ``root/var`` whose database and spool are named relatively."""
    var = root / "var"
    shutil.copytree(seeded.config.parent, var)
    config = var / "gateway.toml"
    text = config.read_text(encoding="utf-8")
    text, urls = re.subn(r"^url = .*$", 'url = "sqlite+aiosqlite:///gateway.db"', text, flags=re.M)
    text, spools = re.subn(r"^spool = .*$", 'spool = "spool"', text, flags=re.M)
    assert (urls, spools) == (1, 1), text
    config.write_text(text, encoding="utf-8")
    return config


def test_commands_read_one_spool_and_database_however_the_file_is_named(seeded_log: SeededLog, tmp_path: Path) -> None:
    """``make run``'s layout: ``var/gateway.toml`` with ``spool = "spool"``, named four ways."""
    root = tmp_path / "root"
    _relocated(seeded_log, root)
    (root / "other").mkdir()
    id = seeded_log.ids["valid"]
    ways = {
        "from the root": (root, ["--config", "var/gateway.toml"], {}),
        "from var/": (root / "var", ["--config", "gateway.toml"], {}),
        "from a sibling": (root / "other", ["--config", "../var/gateway.toml"], {}),
        "GATEWAY_CONFIG": (root, [], {"GATEWAY_CONFIG": "var/gateway.toml"}),
    }
    originals: dict[str, bytes] = {}
    for way, (cwd, args, env) in ways.items():
        out = tmp_path / f"evidence-{len(originals)}.zip"
        done = gateway("evidence", str(id), "-o", out, *args, cwd=cwd, env=env)
        assert done.returncode == 0, f"{way}: {done.stdout}{done.stderr}"
        with zipfile.ZipFile(out) as bundle:
            names = bundle.namelist()
            assert "original.eml" in names, f"{way}: no original.eml in {names}; {done.stderr}"
            originals[way] = bundle.read("original.eml")
        listed = gateway("log", "list", "--json", *args, cwd=cwd, env=env)
        assert listed.returncode == 0, f"{way}: {listed.stdout}{listed.stderr}"
        assert f'"id": {id}' in listed.stdout or f'"id":{id}' in listed.stdout, f"{way}: {listed.stdout}"
    assert len(set(originals.values())) == 1
    assert not (root / "var" / "var").exists()  # nothing looked for (or made) a second var/

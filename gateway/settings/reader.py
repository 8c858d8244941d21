"""Strict TOML tables as frozen dataclasses: ``table_from_toml`` and ``TomlSource``.

Any frozen dataclass whose fields are ``str``, ``int``, ``float``, ``bool``, ``Path``, ``date``
(a TOML local date), ``datetime`` (a TOML offset date-time, or a local one read as Vietnam time;
either is returned in UTC), ``Literal[...]``, ``tuple[...]`` of those, optional variants, or
nested dataclasses can be filled from a TOML table: an unknown key, a value of the wrong type or
a value outside its choices is a ``ConfigError`` that names the file, the line, the key and what
would be valid. ``gateway.toml``, the policy file, the directory and ``META.toml`` all use it.
A field without a default is required. A field's ``metadata["form"]`` describes the value it
expects in words (``HOST:PORT in quotes, ...``): a value of the wrong type gets it as the hint.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from dataclasses import MISSING, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from gateway.clock import VN_TZ
from gateway.errors import ConfigError

__all__ = ["TomlSource", "table_from_toml"]

T = TypeVar("T")


@dataclass(frozen=True)
class TomlSource:
    """A TOML document and where it came from, for error messages that point at a line."""

    text: str
    path: Path

    def load(self) -> dict[str, Any]:
        """Parse the text as TOML.

        Raises:
            ConfigError: not valid TOML; the message names the file and the line.
        """
        try:
            return tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            found = re.search(r"line (\d+)", str(exc))
            line = int(found.group(1)) if found else None
            raise ConfigError(f"not valid TOML: {exc}", path=self.path, line=line) from None

    def line_of(self, table: tuple[str, ...], key: str | None = None) -> int | None:
        """1-based line of ``key`` in ``[table]`` (or of the table header), best effort.

        A table segment may carry a 0-based index, ``("header", "to[1]")``: the second
        ``[[header.to]]`` entry (nested arrays of tables count within their parent entry).
        A key may carry one too (``to_places[2]``): the line of ``to_places`` is returned.
        A table written inline (``from = {...}``) is found through the key that holds it.
        """
        if key is not None:
            key = re.sub(r"\[\d+\]$", "", key)
        header = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
        current: tuple[str, ...] = ()
        latest: dict[tuple[str, ...], int] = {}  # array-of-tables name path -> index of its last entry
        counts: dict[tuple[str, ...], int] = {}  # resolved parent path + name -> entries so far
        for number, line in enumerate(self.text.splitlines(), start=1):
            match = header.match(line)
            if match:
                names = tuple(part.strip().strip('"') for part in match.group(2).split("."))
                resolved: list[str] = []
                for depth, name in enumerate(names):
                    if depth == len(names) - 1 and match.group(1) == "[[":
                        slot = (*resolved, name)
                        counts[slot] = counts.get(slot, 0) + 1
                        latest[names] = counts[slot] - 1
                        resolved.append(f"{name}[{latest[names]}]")
                    elif names[: depth + 1] in latest:
                        resolved.append(f"{name}[{latest[names[: depth + 1]]}]")
                    else:
                        resolved.append(name)
                current = tuple(resolved)
                if key is None and current == table:
                    return number
                sub = names[len(table) : len(table) + 1]
                if key is not None and sub == (key,) and current[: len(table)] == table:
                    return number  # the key names a sub-table: [table.key] or [[table.key]]
                continue
            if key is not None and current == table and re.match(rf"^\s*\"?{re.escape(key)}\"?\s*=", line):
                return number
        if key is not None:
            return self.line_of(table)  # a dotted or oddly quoted key: point at its table
        if table:
            return self.line_of(table[:-1], table[-1])  # an inline table: the key holding it
        return None

    def error(
        self, message: str, table: tuple[str, ...], key: str | None = None, hint: str | None = None
    ) -> ConfigError:
        """A ``ConfigError`` pointing at ``key`` in ``[table]``."""
        return ConfigError(message, path=self.path, line=self.line_of(table, key), hint=hint)


def _table_name(table: tuple[str, ...]) -> str:
    return "[" + ".".join(table) + "]" if table else "the top level"


def _coerce(source: TomlSource, table: tuple[str, ...], key: str, hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    where = f"'{key}' in {_table_name(table)}"
    if isinstance(hint, types.UnionType) or origin is typing.Union:
        options = [a for a in args if a is not type(None)]
        errors: list[ConfigError] = []
        for option in options:
            try:
                return _coerce(source, table, key, option, value)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise source.error(f"{where} is {value!r}; valid choices: {choices}", table, key)
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise source.error(f"{where} must be a list", table, key, hint=f"e.g. {key} = [...]")
        item_hint = args[0]
        return tuple(_coerce(source, table, f"{key}[{i}]", item_hint, v) for i, v in enumerate(value))
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, dict):
            raise source.error(f"{where} must be a table", table, key)
        return table_from_toml(hint, value, source, (*table, key))
    if hint is Path:
        if not isinstance(value, str):
            raise source.error(f"{where} must be a path string", table, key)
        path = Path(value)
        # Relative paths are relative to the file that names them, like Postfix's main.cf.
        return path if path.is_absolute() else (source.path.parent / path)
    if hint is bool:
        if not isinstance(value, bool):
            raise source.error(f"{where} must be true or false, not {value!r}", table, key)
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise source.error(f"{where} must be a whole number, not {value!r}", table, key)
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise source.error(f"{where} must be a number, not {value!r}", table, key)
        return float(value)
    if hint is datetime:
        if not isinstance(value, datetime):
            raise source.error(
                f"{where} must be a date and time, not {value!r}",
                table,
                key,
                hint=f"write it without quotes, e.g. {key} = 2025-03-14T09:30:00+07:00",
            )
        if value.tzinfo is None:
            # A TOML local date-time is what a person in Vietnam means: +07:00 (HOUSE.md rule 12).
            value = value.replace(tzinfo=VN_TZ)
        return value.astimezone(UTC)
    if hint is date:
        # ``datetime`` is a subclass of ``date``: a time where a day is expected is a mistake.
        if isinstance(value, datetime) or not isinstance(value, date):
            raise source.error(
                f"{where} must be a date, not {value!r}",
                table,
                key,
                hint=f"write it without quotes, e.g. {key} = 2025-03-14",
            )
        return value
    if hint is str:
        if not isinstance(value, str):
            raise source.error(f"{where} must be a string, not {value!r}", table, key)
        return value
    raise TypeError(f"unsupported settings type {hint!r} for {where}")  # a programming error


def table_from_toml(cls: type[T], data: dict[str, Any], source: TomlSource, table: tuple[str, ...] = ()) -> T:
    """Fill the frozen dataclass ``cls`` from a parsed TOML table, strictly.

    Raises:
        ConfigError: unknown key, missing required key, wrong type, or a value outside its
            choices.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls, include_extras=False)
    # TOML keys are the field names; a trailing underscore (``from_``) is dropped.
    known = {f.name.rstrip("_"): f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        spec = known.get(key)
        if spec is None:
            valid = ", ".join(sorted(known))
            raise source.error(f"unknown key '{key}' in {_table_name(table)}", table, key, hint=f"valid keys: {valid}")
        try:
            kwargs[spec.name] = _coerce(source, table, key, hints[spec.name], value)
        except ConfigError as exc:
            form = spec.metadata.get("form")
            if form is None or exc.hint is not None:
                raise
            raise ConfigError(exc.detail, path=exc.path, line=exc.line, hint=f"expected {form}") from None
    for key, spec in known.items():
        if spec.name not in kwargs and spec.default is MISSING and spec.default_factory is MISSING:
            required = ", ".join(k for k, f in known.items() if f.default is MISSING and f.default_factory is MISSING)
            raise source.error(f"missing key '{key}' in {_table_name(table)}", table, hint=f"required keys: {required}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise source.error(f"{_table_name(table)}: {exc}", table) from None

"""Reading edXML elements tolerantly: local names, variants, duplicates, typed text.

The parser modules describe each element by the children it knows; this module does the
walking and the reporting, so that every element of the package goes through the same rules
(spec/edxml.md §1, §7.1):

* children are matched by **local name**, in the QCVN namespace, the legacy ``e-doc.vn``
  namespace (reported once, ``edxml-legacy-namespace``) or no namespace; any other namespace is
  read all the same and reported once per namespace (``edxml-foreign-namespace``);
* known variant spellings (``Business``, ``TimeStamp``, ``Status``, ``Author``, ``Function``)
  are read as the standard name and reported (``edxml-variant-spelling``);
* order never matters;
* a single-valued child (every child not marked repeatable in its table) that appears more
  than once is an error (``edxml-duplicate-element``), reported whether or not the model reads
  it, and the **first** one is read: a signature-wrapping attack needs a second copy of some
  element, and the verifier and the reader must agree on which;
* unknown children are reported (``edxml-unknown-element``); a ``Signature`` anywhere but at
  the end of ``edXMLHeader`` is reported as misplaced;
* text is normalised with ``model.normalise_text``; integers, booleans, dates and timestamps
  that cannot be read become ``None`` with a finding.

The ``where`` of a finding is the path of local names as found, from below the envelope,
with a 1-based index on elements that may repeat: ``MessageHeader/To[2]/OrganId``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from lxml import etree

from gateway.edxml import findings
from gateway.edxml.dates import DATE_FORMAT, TIMESTAMP_FORMAT, read_date, read_timestamp
from gateway.edxml.findings import Finding
from gateway.edxml.model import normalise_text
from gateway.edxml.names import LEGACY_NS, QCVN_NS, local_name, namespace_of

__all__ = [
    "ChildTable",
    "Children",
    "Node",
    "Reader",
    "direct_text",
    "known",
    "shown",
]

_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
_SHOWN = 60


@dataclass(frozen=True)
class ChildTable:
    """The children an element may have: local name as found → standard name, and which repeat."""

    names: Mapping[str, str]
    repeatable: frozenset[str]


def known(names: str, **variants: str) -> ChildTable:
    """Describe the children of an element.

    Args:
        names: the standard local names, separated by spaces; a trailing ``*`` marks a child
            that may repeat (``To*``). Every other child may appear once.
        variants: ``found=standard`` pairs for the variant spellings peers use.

    Returns:
        The table ``Reader.children`` works from.
    """
    words = names.split()
    table = {word.rstrip("*"): word.rstrip("*") for word in words}
    table.update(variants)
    return ChildTable(table, frozenset(word.rstrip("*") for word in words if word.endswith("*")))


def shown(value: str) -> str:
    """A value cut short for a message (a hostile peer controls its length).

    Args:
        value: text from the package.

    Returns:
        At most 60 characters and an ellipsis.
    """
    return value if len(value) <= _SHOWN else value[:_SHOWN] + "…"


@dataclass(frozen=True)
class Node:
    """An element and the path it is reported under."""

    element: etree._Element
    path: str


@dataclass
class Reader:
    """Reads one package: collects findings, remembers what was reported once."""

    findings: list[Finding] = field(default_factory=list)
    _legacy_reported: bool = field(default=False, init=False)
    _foreign_reported: set[str] = field(default_factory=set, init=False)

    def add(self, finding: Finding) -> None:
        """Record a finding."""
        self.findings.append(finding)

    def check_namespace(self, element: etree._Element, path: str) -> None:
        """Report a legacy or foreign namespace on an element that is read as edXML."""
        namespace = namespace_of(element.tag)
        if namespace in (QCVN_NS, None):
            return
        if namespace == LEGACY_NS:
            if not self._legacy_reported:
                self._legacy_reported = True
                self.add(findings.LEGACY_NAMESPACE(path, namespace=namespace))
        elif namespace not in self._foreign_reported:
            self._foreign_reported.add(namespace)
            self.add(findings.FOREIGN_NAMESPACE(path, field=path, namespace=namespace))

    def children(self, node: Node, table: ChildTable) -> Children:
        """Group the element children of ``node`` by standard name, reporting the rest.

        Every single-valued child that appears more than once is reported here, whether or
        not the model reads it, so that no copy can hide in a field nobody asks for.

        Args:
            node: the parent.
            table: the children it may have (see ``known``).

        Returns:
            The grouped children; ask them for what the model needs.
        """
        groups: dict[str, list[tuple[etree._Element, str]]] = {}
        for child in _element_children(node.element):
            found = local_name(child.tag)
            path = f"{node.path}/{found}" if node.path else found
            standard = table.names.get(found)
            if standard is None:
                if found == "Signature":
                    detail = "a Signature belongs at the end of edXMLHeader; it was not read here"
                    self.add(findings.MISPLACED_ELEMENT(path, field=path, detail=detail))
                else:
                    self.add(findings.UNKNOWN_ELEMENT(path, field=path))
                continue
            if standard != "Signature":  # the header reader judges the signature's namespace
                self.check_namespace(child, path)
            if found != standard:
                self.add(findings.VARIANT_SPELLING(path, found=found, expected=standard))
            groups.setdefault(standard, []).append((child, found))
        for standard, group in groups.items():
            if len(group) > 1 and standard not in table.repeatable:
                path = f"{node.path}/{group[0][1]}" if node.path else group[0][1]
                self.add(findings.DUPLICATE_ELEMENT(path, field=path, count=len(group)))
        return Children(self, node.path, groups)

    # ----------------------------------------------------------------- typed values

    def text(self, node: Node | None) -> str | None:
        """The normalised text of a leaf (``None`` when absent or empty)."""
        if node is None:
            return None
        element = node.element
        if len(element) == 0:
            return normalise_text(element.text)
        # Comments or stray elements split the text: keep the text, report the elements.
        for child in _element_children(element):
            path = f"{node.path}/{local_name(child.tag)}"
            self.add(findings.UNKNOWN_ELEMENT(path, field=path))
        return normalise_text(direct_text(element))

    def integer(self, node: Node | None) -> int | None:
        """A decimal integer, or ``None`` (with ``edxml-bad-value`` when unreadable)."""
        value = self.text(node)
        if value is None or node is None:
            return None
        if _INTEGER.fullmatch(value):
            return int(value)
        self.add(findings.BAD_VALUE(node.path, value=shown(value), field=node.path, expected="an integer"))
        return None

    def boolean(self, node: Node | None) -> bool | None:
        """``true``/``false`` (any case) or ``1``/``0``; otherwise ``None`` with a finding."""
        value = self.text(node)
        if value is None or node is None:
            return None
        result = _BOOLEANS.get(value.lower())
        if result is None:
            self.add(findings.BAD_VALUE(node.path, value=shown(value), field=node.path, expected="true or false"))
        return result

    def date(self, node: Node | None) -> date | None:
        """A ``yyyy/MM/dd`` date, read leniently (``edxml-lenient-date``/``edxml-bad-date``)."""
        value = self.text(node)
        if value is None or node is None:
            return None
        reading = read_date(value)
        self._judge(node, value, DATE_FORMAT, reading.value is not None, reading.strict)
        return reading.value

    def timestamp(self, node: Node | None) -> datetime | None:
        """A ``yyyy/MM/dd HH:mm:ss`` Vietnam-time timestamp, as aware UTC, read leniently."""
        value = self.text(node)
        if value is None or node is None:
            return None
        reading = read_timestamp(value)
        self._judge(node, value, TIMESTAMP_FORMAT, reading.value is not None, reading.strict)
        return reading.value

    def _judge(self, node: Node, value: str, expected: str, readable: bool, strict: bool) -> None:
        if not readable:
            self.add(findings.BAD_DATE(node.path, value=shown(value), field=node.path, expected=expected))
        elif not strict:
            self.add(findings.LENIENT_DATE(node.path, value=shown(value), field=node.path, expected=expected))


def direct_text(element: etree._Element) -> str:
    """The element's own text, even when comments or stray elements split it.

    Args:
        element: any element.

    Returns:
        Its text plus the tails of its children (not the children's own text).
    """
    return "".join([element.text or "", *(child.tail or "" for child in element)])


def _element_children(element: etree._Element) -> list[etree._Element]:
    # Comments and processing instructions have a non-string tag; they carry no data.
    return [child for child in element if isinstance(child.tag, str)]


@dataclass(frozen=True)
class Children:
    """The known children of one element, grouped by standard name, in document order."""

    reader: Reader
    path: str
    groups: Mapping[str, list[tuple[etree._Element, str]]]

    def _path(self, found: str) -> str:
        return f"{self.path}/{found}" if self.path else found

    def has(self, name: str) -> bool:
        """Whether at least one child has this standard name."""
        return name in self.groups

    def one(self, name: str) -> Node | None:
        """The single child of this name; the first when a peer sent more (already reported)."""
        group = self.groups.get(name)
        if not group:
            return None
        element, found = group[0]
        return Node(element, self._path(found))

    def many(self, name: str) -> list[Node]:
        """Every child of this name, with indexed paths (``To[1]``, ``To[2]``…)."""
        return [
            Node(element, f"{self._path(found)}[{index}]")
            for index, (element, found) in enumerate(self.groups.get(name, ()), start=1)
        ]

    def text(self, name: str) -> str | None:
        """Normalised text of the single child ``name``."""
        return self.reader.text(self.one(name))

    def required(self, name: str) -> str:
        """Like ``text`` but ``""`` when missing: the checks report missing required fields."""
        return self.reader.text(self.one(name)) or ""

    def texts(self, name: str) -> tuple[str, ...]:
        """The non-empty texts of a repeated leaf (``Place``, ``Appendix``, ``OrganId``…)."""
        values = (self.reader.text(node) for node in self.many(name))
        return tuple(value for value in values if value is not None)

    def integer(self, name: str) -> int | None:
        """Integer value of the single child ``name``."""
        return self.reader.integer(self.one(name))

    def boolean(self, name: str) -> bool | None:
        """Boolean value of the single child ``name``."""
        return self.reader.boolean(self.one(name))

    def date(self, name: str) -> date | None:
        """Date value of the single child ``name``."""
        return self.reader.date(self.one(name))

    def timestamp(self, name: str) -> datetime | None:
        """Timestamp value (aware UTC) of the single child ``name``."""
        return self.reader.timestamp(self.one(name))

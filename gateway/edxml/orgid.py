"""Organisation identifiers ("mã định danh", spec/edxml.md §3).

Four kinds of ``OrganId`` travel on the axis; ``OrganId.parse`` tells them apart:

``"A"``
    QCVN 102:2016 original, ``LLL.KK.JJ.XNN`` (regex ``^\\d{3}\\.\\d{2}\\.\\d{2}\\.[A-Z]\\d{2}$``).
    The hierarchy runs right to left: ``XNN`` is level 1, ``JJ`` level 2, ``KK`` level 3,
    ``LLL`` level 4; unused lower levels are zero-filled. The parent sets the left-most
    non-zero group to zero.
``"B"``
    QĐ 20/2020/QĐ-TTg as brought in by Amendment 1:2022, ``XNN(.d{1,3}){0,3}``, level 1
    first, zero groups left out (``G14.27``, ``H01.151.01``). The parent drops the last group.
``"system"``
    The shortened VPCP ``systemId`` forms ending in ``W00`` (``00.53.W00``, ``14.00.W00``).
    Valid on the wire, but they name a system, not a body: no hierarchy is inferred.
``"test"``
    ``vxp.saas.NN``: accounts on the VXP test environment (§3.3). Valid, never production.

Invariants:

* ``OrganId.text`` is the code exactly as given; nothing here converts one format into
  another (the wire must carry what the directory says, spec §3.2);
* ``hierarchy`` is top-down (level 1 first) and ``len(hierarchy) == level``; for format A
  it keeps the groups as written (fixed width) and stops at the lowest used level, so a
  zero group *between* used levels (``001.00.07.H53``) stays in it as ``"00"``;
* ``parent()`` is always of the same format and of a strictly lower level;
* ``is_under`` never crosses formats: whether ``000.00.27.G14`` and ``G14.27`` are the same
  body is an inference, see ``same_body``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "OrganId",
    "OrganIdFormat",
    "is_valid_organ_id",
    "same_body",
]

OrganIdFormat = Literal["A", "B", "system", "test"]

# re.ASCII: ``\d`` would otherwise take Arabic-Indic or full-width digits; ``fullmatch`` (not
# ``match`` with ``$``) so that a trailing newline is refused too.
_FORMAT_A: Final = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$", re.ASCII)
_FORMAT_B: Final = re.compile(r"^[A-Z]\d{2}(?:\.\d{1,3}){0,3}$", re.ASCII)
# Only the ``…W00`` short forms that were seen (two or three dotted 2–3 digit groups), not
# the spec's very loose ``[A-Z0-9.]+``: anything looser would let typos pass as "system".
_SYSTEM: Final = re.compile(r"^(?:\d{2,3}\.){1,3}W00$", re.ASCII)
_TEST: Final = re.compile(r"^vxp\.saas\.\d{2}$", re.ASCII)


def _is_zero(group: str) -> bool:
    return group.strip("0") == ""


@dataclass(frozen=True)
class OrganId:
    """A syntactically valid organisation identifier. Build it with ``OrganId.parse``."""

    text: str
    """Exactly as given (and as it must be written back)."""
    format: OrganIdFormat
    hierarchy: tuple[str, ...]
    """Top-down groups of the used levels; ``(text,)`` for system and test ids."""

    @property
    def level(self) -> int:
        """1 (ministry, province, system, test account) to 4."""
        return len(self.hierarchy)

    @property
    def levels(self) -> tuple[str | None, str | None, str | None, str | None]:
        """``(level1, level2, level3, level4)``, ``None`` for unused levels (spec §3.3)."""
        padded = (*self.hierarchy, None, None, None, None)
        return (padded[0], padded[1], padded[2], padded[3])

    @classmethod
    def parse(cls, text: str) -> OrganId | None:
        """Recognise an identifier.

        Args:
            text: the code as it appears on the wire; it is not stripped or upper-cased,
                because a peer that writes `` h53`` has a bug worth reporting.

        Returns:
            The identifier, or ``None`` when ``text`` matches none of the four kinds.
        """
        if _FORMAT_A.fullmatch(text):
            lll, kk, jj, xnn = text.split(".")
            top_down = [xnn, jj, kk, lll]
            while len(top_down) > 1 and _is_zero(top_down[-1]):
                top_down.pop()
            return cls(text, "A", tuple(top_down))
        if _FORMAT_B.fullmatch(text):
            return cls(text, "B", tuple(text.split(".")))
        if _SYSTEM.fullmatch(text):
            return cls(text, "system", (text,))
        if _TEST.fullmatch(text):
            return cls(text, "test", (text,))
        return None

    def parent(self) -> OrganId | None:
        """The body directly above this one in the code, if any.

        Returns:
            For format A the code with its left-most non-zero group zeroed; for format B the
            code without its last group; ``None`` at level 1 and for system and test ids.
        """
        if self.level == 1 or self.format in ("system", "test"):
            return None
        if self.format == "B":
            return OrganId(".".join(self.hierarchy[:-1]), "B", self.hierarchy[:-1])
        groups = self.text.split(".")
        for index, group in enumerate(groups[:3]):
            if not _is_zero(group):
                groups[index] = "0" * len(group)
                break
        parent = OrganId.parse(".".join(groups))
        if parent is None:  # pragma: no cover - zeroing a group keeps the A shape
            raise AssertionError(f"parent of {self.text!r} is not format A")
        return parent

    def ancestors(self) -> tuple[OrganId, ...]:
        """Parent, grandparent, … up to level 1 (empty at level 1)."""
        chain: list[OrganId] = []
        current = self.parent()
        while current is not None:
            chain.append(current)
            current = current.parent()
        return tuple(chain)

    def is_under(self, other: OrganId) -> bool:
        """Whether ``other`` is a proper ancestor of this body, by the code alone.

        Args:
            other: the candidate ancestor.

        Returns:
            ``True`` when both are of the same hierarchical format (A or B) and ``other``
            is reached by taking parents; ``False`` for the same code, for other formats,
            and for system and test ids.
        """
        return any(ancestor.text == other.text for ancestor in self.ancestors())

    def __str__(self) -> str:
        return self.text


def is_valid_organ_id(text: str) -> bool:
    """Whether ``text`` is an identifier of any of the four accepted kinds.

    Args:
        text: the code as on the wire.

    Returns:
        ``True`` for format A, format B, a system id or a VXP test id.
    """
    return OrganId.parse(text) is not None


def _as_b_text(organ: OrganId) -> str:
    """The spec's inferred A→B spelling: ``XNN.JJ.KK.LLL`` minus trailing zero groups."""
    return ".".join(organ.hierarchy)


def same_body(a: OrganId | str, b: OrganId | str) -> bool:
    """Whether two identifiers probably name the same body.

    Equal codes are the same body. A format A code and a format B code are taken to be the
    same body when the A code, rewritten by the spec's inferred mapping (§3.2, **[U]**:
    ``LLL.KK.JJ.XNN`` → ``XNN.JJ.KK.LLL``, trailing all-zero groups dropped, digits kept as
    written), equals the B code: ``000.00.27.G14`` ~ ``G14.27``. The assumption is
    deliberately narrow: no digit normalisation (``H19.5`` is *not* ``000.00.05.H19``), and
    nothing about the 2025 renumbering, so a ``False`` means "not known to be the same",
    never "certainly different". Use it for display and matching hints, not for routing.

    Args:
        a: an identifier or its text.
        b: another identifier or its text.

    Returns:
        ``True`` when equal, or related by the mapping above; ``False`` otherwise, and
        whenever either text is not a valid identifier.
    """
    left = a if isinstance(a, OrganId) else OrganId.parse(a)
    right = b if isinstance(b, OrganId) else OrganId.parse(b)
    if left is None or right is None:
        return False
    if left.text == right.text:
        return True
    if {left.format, right.format} != {"A", "B"}:
        return False
    a_code, b_code = (left, right) if left.format == "A" else (right, left)
    return _as_b_text(a_code) == b_code.text

"""Organisation identifiers: every example code of spec §3, the known typo, parents, hierarchy."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.edxml.orgid import OrganId, is_valid_organ_id, same_body

# (code, format, level, top-down hierarchy) for every example in spec §3.
SPEC_EXAMPLES = [
    ("000.00.00.G22", "A", 1, ("G22",)),
    ("000.00.01.H53", "A", 2, ("H53", "01")),
    ("000.00.32.H53", "A", 2, ("H53", "32")),
    ("000.00.27.G14", "A", 2, ("G14", "27")),
    ("000.01.32.H53", "A", 3, ("H53", "32", "01")),
    ("000.20.31.H53", "A", 3, ("H53", "31", "20")),
    ("001.01.07.H53", "A", 4, ("H53", "07", "01", "001")),
    ("G14.27", "B", 2, ("G14", "27")),
    ("H26.15", "B", 2, ("H26", "15")),
    ("H01.151", "B", 2, ("H01", "151")),
    ("H01.151.01", "B", 3, ("H01", "151", "01")),
    ("G11.07.05", "B", 3, ("G11", "07", "05")),
    ("H19.5", "B", 2, ("H19", "5")),
    ("00.53.W00", "system", 1, ("00.53.W00",)),
    ("14.00.W00", "system", 1, ("14.00.W00",)),
    ("vxp.saas.03", "test", 1, ("vxp.saas.03",)),
]


@pytest.mark.parametrize(("text", "fmt", "level", "hierarchy"), SPEC_EXAMPLES)
def test_spec_examples(text: str, fmt: str, level: int, hierarchy: tuple[str, ...]) -> None:
    organ = OrganId.parse(text)
    assert organ is not None
    assert organ.text == text
    assert str(organ) == text
    assert organ.format == fmt
    assert organ.level == level
    assert organ.hierarchy == hierarchy
    assert is_valid_organ_id(text)


@pytest.mark.parametrize(
    "text",
    [
        "000.1137.H53",  # the one typo in Bkav's seed data (spec §3.1)
        "",
        "000.00.01.h53",
        " 000.00.01.H53",
        "000.00.01.H53 ",
        "000.00.01.H53\n",
        "G14.27\n",
        "00.00.01.H53",
        "000.000.01.H53",
        "000.00.01.H5",
        "000.00.01.53",
        "G14.",
        "G14.1234",
        "G14.1.2.3.4",
        "g14.27",
        "14.27",
        "00.53.W01",
        "vxp.saas.3",
        "VXP.SAAS.03",
        "000.00.01.Ｈ53",  # full-width letter
        "000.00.01.H٥3",  # Arabic-Indic digit: \\d without re.ASCII matches it, our ids must not
    ],
)
def test_invalid(text: str) -> None:
    assert OrganId.parse(text) is None
    assert not is_valid_organ_id(text)


def test_levels_are_padded_to_four() -> None:
    organ = OrganId.parse("000.01.32.H53")
    assert organ is not None
    assert organ.levels == ("H53", "32", "01", None)


def test_parent_chain_format_a() -> None:
    organ = OrganId.parse("001.01.07.H53")
    assert organ is not None
    chain = [a.text for a in organ.ancestors()]
    assert chain == ["000.01.07.H53", "000.00.07.H53", "000.00.00.H53"]
    top = organ.ancestors()[-1]
    assert top.parent() is None
    assert top.level == 1


def test_parent_chain_format_b() -> None:
    organ = OrganId.parse("H01.151.01")
    assert organ is not None
    assert [a.text for a in organ.ancestors()] == ["H01.151", "H01"]


def test_gap_between_levels_keeps_the_zero_group() -> None:
    organ = OrganId.parse("001.00.07.H53")
    assert organ is not None
    assert organ.hierarchy == ("H53", "07", "00", "001")
    parent = organ.parent()
    assert parent is not None
    assert parent.text == "000.00.07.H53"


def test_system_and_test_ids_have_no_parent() -> None:
    for text in ("00.53.W00", "vxp.saas.03"):
        organ = OrganId.parse(text)
        assert organ is not None
        assert organ.parent() is None
        assert organ.ancestors() == ()


def test_is_under() -> None:
    def p(text: str) -> OrganId:
        organ = OrganId.parse(text)
        assert organ is not None
        return organ

    assert p("000.01.32.H53").is_under(p("000.00.32.H53"))
    assert p("000.01.32.H53").is_under(p("000.00.00.H53"))
    assert not p("000.00.32.H53").is_under(p("000.01.32.H53"))
    assert not p("000.00.32.H53").is_under(p("000.00.32.H53"))  # proper ancestors only
    assert not p("000.01.32.H53").is_under(p("000.00.31.H53"))
    assert not p("000.00.32.H53").is_under(p("000.00.00.G14"))
    assert p("H01.151.01").is_under(p("H01"))
    assert not p("000.00.27.G14").is_under(p("G14"))  # never across formats


def test_same_body() -> None:
    assert same_body("000.00.27.G14", "G14.27")
    assert same_body("G14.27", "000.00.27.G14")
    assert same_body("000.00.00.G22", "G22")
    assert same_body("001.01.07.H53", "H53.07.01.001")
    assert same_body("G14.27", "G14.27")
    assert not same_body("000.00.05.H19", "H19.5")  # digits are kept as written, on purpose
    assert not same_body("000.00.27.G14", "G14.28")
    assert not same_body("000.00.27.G14", "000.00.28.G14")
    assert not same_body("000.1137.H53", "000.1137.H53")
    assert not same_body("00.53.W00", "H53")


# ------------------------------------------------------------------ properties

_letter = st.sampled_from("ABDGHW")


@st.composite
def format_a(draw: st.DrawFn) -> str:
    top = draw(_letter) + draw(st.from_regex(r"[0-9]{2}", fullmatch=True))
    groups = [draw(st.from_regex(rf"[0-9]{{{n}}}", fullmatch=True)) for n in (3, 2, 2)]
    return ".".join([*groups, top])


@st.composite
def format_b(draw: st.DrawFn) -> str:
    top = draw(_letter) + draw(st.from_regex(r"[0-9]{2}", fullmatch=True))
    rest = draw(st.lists(st.from_regex(r"[0-9]{1,3}", fullmatch=True), max_size=3))
    return ".".join([top, *rest])


codes = st.one_of(format_a(), format_b())


@given(codes)
def test_parent_is_higher_and_of_the_same_format(text: str) -> None:
    organ = OrganId.parse(text)
    assert organ is not None
    assert 1 <= organ.level <= 4
    parent = organ.parent()
    if organ.level == 1:
        assert parent is None
        return
    assert parent is not None
    assert parent.format == organ.format
    assert parent.level < organ.level
    assert organ.is_under(parent)
    assert not parent.is_under(organ)
    # The parent's hierarchy is a prefix of the child's: the code only loses its lowest level.
    assert organ.hierarchy[: parent.level] == parent.hierarchy


@given(codes, codes, codes)
def test_is_under_is_transitive(a: str, b: str, c: str) -> None:
    x, y, z = (OrganId.parse(t) for t in (a, b, c))
    assert x is not None
    assert y is not None
    assert z is not None
    if x.is_under(y) and y.is_under(z):
        assert x.is_under(z)


@given(codes)
def test_every_ancestor_is_under_the_next(text: str) -> None:
    organ = OrganId.parse(text)
    assert organ is not None
    chain = [organ, *organ.ancestors()]
    for lower, upper in itertools.pairwise(chain):
        assert lower.is_under(upper)
    for ancestor in chain[1:]:
        assert organ.is_under(ancestor)
    assert chain[-1].level == 1


@given(format_a())
def test_a_code_is_the_same_body_as_its_inferred_b_spelling(text: str) -> None:
    organ = OrganId.parse(text)
    assert organ is not None
    spelled = ".".join(organ.hierarchy)
    if OrganId.parse(spelled) is not None:
        assert same_body(text, spelled)

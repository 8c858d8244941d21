"""The agency directory: strict loading, one spelling of fingerprints, ownership of certificates."""

from __future__ import annotations

import pytest

from gateway.errors import ConfigError
from gateway.verify.directory import Agency, directory_from_toml

SAMPLE = """
[[agency]]
organ_id = "000.00.00.G22"
name = "Văn phòng Chính phủ"
mail = ["vanthu@chinhphu.vn"]
certificates = ["fd:0e:4c:12:da:09:f8:f5:49:71:54:29:f8:08:a1:22:c8:71:2c:17:7d:67:5a:91:2d:7a:92:b8:90:55:45:d7"]

[[agency]]
organ_id = " H53.01 "
subjects = ["O=UBND tỉnh Tây Ninh"]
"""


def test_agencies_by_organ_id_with_normalised_fingerprints() -> None:
    directory = directory_from_toml(SAMPLE, "directory.toml")
    vpcp = directory.get("000.00.00.G22")
    assert vpcp is not None
    assert vpcp.mail == ("vanthu@chinhphu.vn",)
    assert vpcp.certificates == ("FD0E4C12DA09F8F549715429F808A122C8712C177D675A912D7A92B8905545D7",)
    assert vpcp.owns("CN=anything", "fd0e4c12da09f8f549715429f808a122c8712c177d675a912d7a92b8905545d7".upper())
    assert not vpcp.owns("CN=VPCP", "00" * 32)
    tay_ninh = directory.get("H53.01")
    assert tay_ninh is not None
    assert tay_ninh.owns("CN=UBND TỈNH,O=UBND tỉnh Tây Ninh,C=VN", "00" * 32)
    assert directory.get("000.00.99.H53") is None


def test_an_agency_without_certificates_judges_nothing() -> None:
    assert not Agency("000.00.00.G22", mail=("a@b.vn",)).knows_its_certificates()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[agency]]\norgan_id = "X"\n[[agency]]\norgan_id = "X"\n', "OrganId X appears twice"),
        ('[[agency]]\norgan_id = "X"\ncertificates = ["ABCD"]\n', "not SHA-256 fingerprints"),
        ('[[agency]]\norgan_id = "X"\nsubjects = ["(oops"]\n', "invalid subject pattern"),
        ('[[agency]]\norgan_id = "X"\nemail = ["a@b.vn"]\n', "unknown key 'email'"),
    ],
)
def test_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        directory_from_toml(text, "/etc/gateway/directory.toml")
    assert "/etc/gateway/directory.toml" in str(caught.value)

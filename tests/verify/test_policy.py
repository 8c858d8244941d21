"""The admin's policy: strict loading, the shipped default, the canonical hash, actions."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.verify.codes import ALL_KINDS
from gateway.verify.facts import Modification
from gateway.verify.policy import DEFAULT_ACTIONS, Action, Policy, load_policy, policy_from_toml

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "policy.toml"


def load(text: str) -> Policy:
    return policy_from_toml(text, "/etc/gateway/policy.toml")


def error(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(text)
    return str(caught.value)


def test_every_code_has_a_default_action() -> None:
    assert set(DEFAULT_ACTIONS) == set(ALL_KINDS)


def test_the_shipped_file_is_the_built_in_default() -> None:
    shipped = load_policy(SHIPPED)
    assert shipped == Policy()
    assert shipped.sha256 == Policy().sha256


def test_an_empty_file_is_the_default() -> None:
    assert load("") == Policy()


def test_canonical_text_reads_back_to_the_same_policy_and_hash() -> None:
    custom = load(
        '[policy]\nname = "thử"\nversion = "2"\n[revocation]\nmode = "soft-fail"\n'
        '[modifications]\nallowed = ["none", "annotations", "lta-updates"]\n'
        '[algorithms]\nsha1_cutoff = 2019-01-01\n[signers]\norganisation_policy_oids = ["2.25.2", "2.25.1"]\n'
        '[actions]\n"timestamp-absent" = "reject"\n'
    )
    again = load(custom.canonical)
    assert again == custom
    assert again.sha256 == custom.sha256 == hashlib.sha256(custom.canonical.encode()).hexdigest()
    assert custom.sha256 != Policy().sha256


def test_order_of_lists_does_not_change_the_policy() -> None:
    a = load('[signers]\norganisation_policy_oids = ["2.25.1", "2.25.2"]\n')
    b = load('[signers]\norganisation_policy_oids = ["2.25.2", "2.25.1"]\n')
    assert a == b
    assert a.sha256 == b.sha256


def test_actions_override_defaults() -> None:
    policy = load('[actions]\n"timestamp-absent" = "reject"\n"edxml-bad-org-id" = "ignore"\n')
    assert policy.action_for("timestamp-absent") is Action.REJECT
    assert policy.action_for("edxml-bad-org-id") is Action.IGNORE
    assert policy.action_for("cert-revoked") is Action.REJECT  # untouched default


@pytest.mark.parametrize(("mode", "action"), [("hard-fail", Action.DEFER), ("soft-fail", Action.WARN), ("off", None)])
def test_revocation_mode_alone_decides_revocation_unavailable(mode: str, action: Action | None) -> None:
    assert load(f'[revocation]\nmode = "{mode}"\n').action_for("revocation-unavailable") is action


def test_modifications_and_algorithms_are_read() -> None:
    policy = load('[modifications]\nallowed = ["none"]\n[algorithms]\nrsa_min_bits = 3072\nsha1_cutoff = 2018-06-30\n')
    assert policy.allowed_modifications == frozenset({Modification.NONE})
    assert policy.algorithms.rsa_min_bits == 3072
    assert policy.algorithms.sha1_cutoff == date(2018, 6, 30)


# --------------------------------------------------------------------------- errors name file, line, choices


def test_unknown_code_names_file_line_and_valid_codes() -> None:
    message = error('[policy]\nname = "x"\n\n[actions]\n"cert-revokd" = "reject"\n')
    assert message.startswith("/etc/gateway/policy.toml:5: unknown finding code 'cert-revokd' in [actions]")
    assert "valid codes:" in message
    assert "cert-revoked" in message


def test_unknown_action_lists_the_actions() -> None:
    message = error('[actions]\n"cert-revoked" = "refuse"\n')
    assert ":2:" in message
    assert "valid actions: reject, defer, warn, ignore" in message


def test_revocation_unavailable_cannot_be_set_as_an_action() -> None:
    message = error('[actions]\n"revocation-unavailable" = "ignore"\n')
    assert "decided by [revocation] mode" in message
    assert 'mode = "hard-fail"' in message


def test_unknown_table_and_key() -> None:
    assert "unknown table [revocaton]" in error('[revocaton]\nmode = "off"\n')
    message = error('[revocation]\nmood = "off"\n')
    assert ":2: unknown key 'mood' in [revocation]" in message
    assert "valid keys: mode" in message


def test_values_outside_their_choices() -> None:
    assert "valid choices: 'hard-fail', 'soft-fail', 'off'" in error('[revocation]\nmode = "strict"\n')
    assert "valid choices" in error('[modifications]\nallowed = ["none", "everything"]\n')
    assert "not secure digests" in error('[algorithms]\nhashes = ["sha256", "sha1"]\n')
    assert "cannot be negative" in error("[time]\nclock_skew_seconds = -1\n")
    assert "not a valid regular expression" in error('[signers]\norganisation_subject_patterns = ["(unclosed"]\n')


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="policy file not found"):
        load_policy(tmp_path / "nope.toml")

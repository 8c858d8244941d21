"""A package must be addressed to us (Decree 30/2020 Art. 21.2.b: otherwise return it)."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.edxml.findings import Finding
from gateway.edxml.model import DocumentPackage, StatusPackage
from gateway.verify.codes import MISADDRESSED
from gateway.verify.rules.base import Context, Rule

__all__ = ["RULE"]


def check(context: Context) -> Iterable[Finding]:
    ours = {organ.strip() for organ in context.identity.organ_ids}
    package = context.package
    if not ours or package is None:
        return  # who we are is not configured: nothing to compare with
    if isinstance(package, DocumentPackage):
        named = [to.organ_id for to in package.header.to if to.organ_id]
        if not named or ours.isdisjoint(named):
            yield MISADDRESSED("MessageHeader/To", ours=", ".join(sorted(ours)), recipients=", ".join(named) or "-")
    elif isinstance(package, StatusPackage):
        # A status is about one of our documents: its ResponseFor names the original sender (us).
        about = package.response_for.organ_id
        if about and about not in ours:
            yield MISADDRESSED("MessageHeader/ResponseFor/OrganId", ours=", ".join(sorted(ours)), recipients=about)


RULE = Rule(
    name="misaddressed",
    codes=frozenset({MISADDRESSED.code}),
    description="The package names one of our OrganIds as recipient (a status: is about our document).",
    check=check,
)

"""Fixtures shared by the whole test suite (import them here so pytest registers them)."""

from tests.archive.seeded import seeded_log
from tests.pdfs.corpus import signed_pdfs
from tests.pki import dev_pki

__all__ = ["dev_pki", "seeded_log", "signed_pdfs"]

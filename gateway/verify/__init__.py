"""Judgement: envelope and PDF signature verification, trust, admin-tunable rules.

Network access only through injected fetcher objects; never imports the mail edges or the store.
"""

__all__: list[str] = []

"""Real Postfix in front of the gateway (issue 7): the harness (``harness.py``) and its tests.

The harness lives in this package rather than in ``tests/postfix.py``: a module and a package of
the same name cannot both exist. ``from tests.postfix import PostfixInstance`` imports it.
"""

from tests.postfix.harness import PostfixInstance, header, parse_main_cf, require_postfix

__all__ = ["PostfixInstance", "header", "parse_main_cf", "require_postfix"]

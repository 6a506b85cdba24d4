"""How many examples a property test draws: its own number in ``make test``, at most 5 in ``make test-fast``.

``make test-fast`` loads the hypothesis profile ``fast`` (registered in
``tests/conftest.py``, chosen with ``--hypothesis-profile=fast``), whose
``max_examples`` caps every property test, so the point-in-time properties
still run there, on fewer draws. ``make test`` draws the full number.
"""

from __future__ import annotations

from hypothesis import settings


def examples(full: int) -> int:
    """``full``, or the loaded profile's ``max_examples`` when that is smaller."""
    return min(full, settings.default.max_examples)

"""The ledger's own failure: a rule it relies on does not hold.

Its own module so that every ledger module can raise it without importing
`ledger/service.py` (which imports them): no import circle inside the ledger.
"""

from __future__ import annotations


class LedgerInvariantError(RuntimeError):
    """A rule the ledger relies on does not hold: a bug, never a user error."""

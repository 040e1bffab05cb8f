"""A banking REST service: double-entry ledger, transfers, debit cards and statements."""

__version__ = "0.1.0"

"""The currencies the bank keeps accounts in, with their ISO 4217 minor-unit exponents."""

from __future__ import annotations

# ISO 4217 code -> number of minor-unit digits (USD 2: amounts are cents; JPY 0: yen).
CURRENCY_EXPONENTS: dict[str, int] = {
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "CHF": 2,
    "CAD": 2,
    "AUD": 2,
    "JPY": 0,
}
SUPPORTED_CURRENCIES = tuple(CURRENCY_EXPONENTS)
DEFAULT_CURRENCY = "USD"

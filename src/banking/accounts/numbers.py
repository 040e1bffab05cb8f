"""Account numbers: 12 digits, the last a Luhn check digit, drawn at random.

Numbers are independent of account ids (an id reveals nothing about a number and the
reverse). The first digit is never 0, so a number never loses a digit in a spreadsheet.
"""

from __future__ import annotations

import secrets

LENGTH = 12


def luhn_check_digit(payload: str) -> str:
    total = 0
    # Double every second digit from the right of the payload (the check digit's neighbour).
    for position, char in enumerate(reversed(payload)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def is_valid(number: str) -> bool:
    return (
        len(number) == LENGTH
        and number.isascii()
        and number.isdigit()
        and luhn_check_digit(number[:-1]) == number[-1]
    )


def generate() -> str:
    payload = str(secrets.randbelow(9) + 1) + "".join(
        str(secrets.randbelow(10)) for _ in range(LENGTH - 2)
    )
    return payload + luhn_check_digit(payload)


def mask(number: str | None) -> str | None:
    """Only the last four digits, as on a card: `********1234`."""
    if number is None:
        return None
    return "*" * (len(number) - 4) + number[-4:]


def mask_name(first_name: str | None, last_name: str | None) -> str:
    """A holder's name as someone who only knows the account number may see it: the
    initials (`G*** H***`), as the payee lookup shows it."""

    def initial(name: str | None) -> str:
        return name[:1] + "***" if name else "***"

    return f"{initial(first_name)} {initial(last_name)}"

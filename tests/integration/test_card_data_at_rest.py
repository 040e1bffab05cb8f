"""Card numbers and CVVs cannot be recovered from a copy of the database.

The attacker has every table (but not the server's secrets) and a script: they know the
BIN, the last four digits and the expiry (all in clear), and every field of an
authorization but the card number and CVV. The test builds such a database with real
authorizations, then (1) looks for any unkeyed digest of any request body in every text
and binary column, and (2) runs the brute force that recovered card data from the old,
unkeyed fingerprints over a candidate set that includes the true card number and CVV.
Both find nothing; a positive control shows the same brute force finds the card data in
a fingerprint made the old way.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import inspect, select, table, text
from sqlalchemy.engine import Connection

from banking.cards.vault import luhn_check_digit
from tests.cards_support import NETWORK, funded_card, payment
from tests.factories import make_member

ALGORITHMS = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha3_256", "blake2b")
# Other card numbers the attacker tries besides the true one (same BIN and last four).
DECOY_NUMBERS = 40


class Sent:
    """Every request body the test sent, as parsed JSON and as the bytes on the wire."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any], bytes]] = []

    async def post(
        self, client: httpx.AsyncClient, path: str, body: dict[str, Any], **headers: str
    ) -> httpx.Response:
        response = await client.post(path, json=body, headers=headers)
        self.requests.append((path, body, response.request.content))
        return response


def canonical_forms(path: str, body: dict[str, Any], wire: bytes) -> Iterator[bytes]:
    """Ways anyone might serialise a request before hashing it."""
    yield wire
    for sort_keys, separators in itertools.product((False, True), ((",", ":"), (", ", ": "), None)):
        for subject in (body, ["POST", path, body], [path, body], {"path": path, "body": body}):
            yield json.dumps(subject, sort_keys=sort_keys, separators=separators).encode()
    yield ("POST" + path + json.dumps(body, sort_keys=True)).encode()
    yield "|".join(str(value) for value in body.values()).encode()


def digest_spellings(data: bytes) -> Iterator[str | bytes]:
    for name in ALGORITHMS:
        raw = hashlib.new(name, data).digest()
        yield raw
        yield raw.hex()
        yield raw.hex().upper()
        yield base64.b64encode(raw).decode()
        yield base64.urlsafe_b64encode(raw).decode().rstrip("=")


def stored_values(connection: Connection) -> list[str | bytes]:
    """Every text and binary value in every table of the database."""
    values: list[str | bytes] = []
    inspector = inspect(connection)
    for name in inspector.get_table_names():
        columns = [column["name"] for column in inspector.get_columns(name)]
        quoted = ", ".join(f'"{column}"' for column in columns)
        for row in connection.execute(text(f'SELECT {quoted} FROM "{name}"')):
            for value in row:
                if isinstance(value, memoryview):
                    value = value.tobytes()
                if isinstance(value, str | bytes) and value:
                    values.append(value)
    return values


def contains(haystack: str | bytes, needle: str | bytes) -> bool:
    if isinstance(haystack, bytes) and isinstance(needle, str):
        return needle.encode() in haystack
    if isinstance(haystack, str) and isinstance(needle, bytes):
        return needle.hex() in haystack
    return needle in haystack  # type: ignore[operator]


def decoy_numbers(pan: str, count: int) -> list[str]:
    """Luhn-valid numbers with the card's BIN and last four digits, the true one first."""
    bin_prefix, last4 = pan[:6], pan[-4:]
    numbers = [pan]
    for middle in range(10**5):
        if len(numbers) > count:
            break
        digits = f"{middle:05d}"
        # Choose the 11th digit so the whole number passes Luhn with these last four.
        for free in "0123456789":
            candidate = bin_prefix + digits + free + last4
            if candidate != pan and luhn_check_digit(candidate[:-1]) == candidate[-1]:
                numbers.append(candidate)
                break
    return numbers


def brute_force(
    targets: set[str],
    *,
    path: str,
    known: dict[str, Any],
    numbers: Iterable[str],
) -> list[tuple[str, str]]:
    """The attack: rebuild the body from clear fields around every guess of card number
    and CVV, hash it the ways an unkeyed fingerprint would be made, look it up."""
    found = []
    shapes = []
    for sort_keys in (True, False):
        template = {**known, "card_number": "@@PAN@@", "cvv": "@@CVV@@"}
        shapes.append(
            json.dumps(["POST", path, template], sort_keys=sort_keys, separators=(",", ":"))
        )
        shapes.append(json.dumps(template, sort_keys=sort_keys, separators=(",", ":")))
    for number in numbers:
        with_number = [shape.replace("@@PAN@@", number) for shape in shapes]
        for cvv in (f"{value:03d}" for value in range(1000)):
            for shape in with_number:
                data = shape.replace("@@CVV@@", cvv).encode()
                if (
                    hashlib.sha256(data).hexdigest() in targets
                    or hashlib.sha1(data).hexdigest() in targets
                    or hashlib.md5(data).hexdigest() in targets
                ):
                    found.append((number, cvv))
    return found


async def _database_after_real_card_traffic(
    client: httpx.AsyncClient,
) -> tuple[dict[str, Any], Sent]:
    member = await make_member(client)
    account, card = await funded_card(client, member, balance_minor=500_00)
    sent = Sent()
    path = "/v1/card-authorizations"
    wrong_cvv = f"{(int(card['cvv']) + 1) % 1000:03d}"
    approved = await sent.post(
        client, path, payment(card, 12_34), **NETWORK, **{"Idempotency-Key": "auth-approved"}
    )
    assert approved.json()["status"] == "approved", approved.text
    replay = await sent.post(
        client, path, payment(card, 12_34), **NETWORK, **{"Idempotency-Key": "auth-approved"}
    )
    assert replay.headers.get("Idempotent-Replayed") == "true"
    declined = await sent.post(
        client,
        path,
        payment(card, 5_00, cvv=wrong_cvv),
        **NETWORK,
        **{"Idempotency-Key": "auth-wrong-cvv"},
    )
    assert declined.json()["decline_reason"] == "cvv_mismatch"
    voided = await sent.post(
        client, path, payment(card, 7_00), **NETWORK, **{"Idempotency-Key": "auth-to-void"}
    )
    assert voided.json()["status"] == "approved"
    await sent.post(
        client,
        f"{path}/{voided.json()['id']}/void",
        {},
        **NETWORK,
        **{"Idempotency-Key": "void-1"},
    )
    captured = await sent.post(
        client,
        f"{path}/{approved.json()['id']}/capture",
        {"amount": 12_00},
        **NETWORK,
        **{"Idempotency-Key": "capture-1"},
    )
    assert captured.status_code in (200, 201), captured.text
    deposit = await sent.post(
        client,
        f"/v1/accounts/{account['id']}/deposits",
        {"amount": 3_00, "description": "cash"},
        Authorization=member.headers["Authorization"],
        **{"Idempotency-Key": "deposit-1"},
    )
    assert deposit.status_code == 201, deposit.text
    return card, sent


async def _all_stored_values(app: FastAPI) -> list[str | bytes]:
    async with app.state.db.engine.connect() as connection:
        values: list[str | bytes] = await connection.run_sync(stored_values)
    return values


async def _network_fingerprints(app: FastAPI) -> set[str]:
    idempotency = table("idempotency_record")
    async with app.state.db.engine.connect() as connection:
        rows = await connection.execute(
            select(text("fingerprint"))
            .select_from(idempotency)
            .where(text("scope = 'network:card-network'"))
        )
        return {row[0] for row in rows}


def _known_fields(card: dict[str, Any], amount: int) -> dict[str, Any]:
    """What the attacker reads in clear: the authorization's row and the card's expiry."""
    return {
        key: value
        for key, value in payment(card, amount).items()
        if key not in ("card_number", "cvv")
    }


class TestNoCardDataInAnyForm:
    async def test_no_stored_value_is_an_unkeyed_digest_of_a_request_body(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        card, sent = await _database_after_real_card_traffic(client)
        values = await _all_stored_values(app)
        fingerprints = await _network_fingerprints(app)
        # The scan sees the records it is about: three authorizations, a void and a capture.
        assert len(fingerprints) == 5
        assert all(any(contains(value, print_) for value in values) for print_ in fingerprints)
        candidates = {
            spelling
            for path, body, wire in sent.requests
            for form in canonical_forms(path, body, wire)
            for spelling in digest_spellings(form)
        }
        assert len(candidates) > 1000
        leaks = [
            (value if isinstance(value, str) else value.hex())[:80]
            for value in values
            for candidate in candidates
            if contains(value, candidate)
        ]
        assert leaks == []
        # Nor is the number itself anywhere.
        assert not any(contains(value, card["pan"]) for value in values)

    async def test_a_brute_force_over_card_numbers_and_cvvs_finds_nothing(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        card, _ = await _database_after_real_card_traffic(client)
        values = await _all_stored_values(app)
        targets = {value for value in values if isinstance(value, str)}
        numbers = decoy_numbers(card["pan"], DECOY_NUMBERS)
        assert card["pan"] in numbers
        assert len(numbers) == DECOY_NUMBERS + 1
        path = "/v1/card-authorizations"
        for amount in (12_34, 5_00, 7_00):
            known = _known_fields(card, amount)
            assert brute_force(targets, path=path, known=known, numbers=numbers) == []
            # Positive control: the same search finds the card data in a fingerprint made
            # the old way (unkeyed SHA-256 of the request), so finding nothing means
            # something.
            body = {**known, "card_number": card["pan"], "cvv": card["cvv"]}
            old_way = hashlib.sha256(
                json.dumps(["POST", path, body], sort_keys=True, separators=(",", ":")).encode()
            ).hexdigest()
            assert brute_force({old_way}, path=path, known=known, numbers=numbers[:2]) == [
                (card["pan"], card["cvv"])
            ]

    async def test_the_same_key_and_body_still_replay_and_a_changed_cvv_is_refused(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        _, card = await funded_card(client, member)
        headers = {**NETWORK, "Idempotency-Key": "fingerprint-check"}
        path = "/v1/card-authorizations"
        first = await client.post(path, json=payment(card, 2_00), headers=headers)
        again = await client.post(path, json=payment(card, 2_00), headers=headers)
        assert again.json() == first.json()
        assert again.headers.get("Idempotent-Replayed") == "true"
        other_cvv = f"{(int(card['cvv']) + 1) % 1000:03d}"
        other_number = decoy_numbers(card["pan"], 1)[1]
        for changed in ({"cvv": other_cvv}, {"card_number": other_number}):
            refused = await client.post(path, json=payment(card, 2_00, **changed), headers=headers)
            assert refused.status_code == 422, refused.text
            assert refused.json()["code"] == "idempotency_key_reused"


def test_decoys_share_the_cards_visible_digits_and_pass_luhn() -> None:
    body = "400000123456789"
    pan = body + luhn_check_digit(body)
    numbers = decoy_numbers(pan, 10)
    assert numbers[0] == pan
    assert len(set(numbers)) == 11
    for number in numbers:
        assert (number[:6], number[-4:], len(number)) == (pan[:6], pan[-4:], 16)
        assert luhn_check_digit(number[:-1]) == number[-1]

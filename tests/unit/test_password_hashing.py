"""The production password hasher: tests/conftest.py swaps in a cheap one for speed, so
the real parameters are checked here, on the object the service uses in production."""

from __future__ import annotations

import pytest
from argon2 import Type
from argon2.exceptions import VerifyMismatchError

from banking.core import security
from tests.conftest import PRODUCTION_DUMMY_HASH, PRODUCTION_PASSWORDS, TEST_PASSWORDS


def test_production_uses_argon2id_above_the_owasp_minimum() -> None:
    # OWASP (2024): Argon2id, m >= 19 MiB, t >= 2, p = 1.
    assert PRODUCTION_PASSWORDS.type is Type.ID
    assert PRODUCTION_PASSWORDS.memory_cost == 46 * 1024
    assert PRODUCTION_PASSWORDS.time_cost == 2
    assert PRODUCTION_PASSWORDS.parallelism == 1
    assert PRODUCTION_PASSWORDS.hash_len == 32
    assert PRODUCTION_PASSWORDS.salt_len == 16


def test_a_production_hash_records_its_parameters_and_verifies() -> None:
    password_hash = PRODUCTION_PASSWORDS.hash("Plum-Harbour-Lantern-42")
    assert password_hash.startswith("$argon2id$v=19$m=47104,t=2,p=1$")
    assert PRODUCTION_PASSWORDS.verify(password_hash, "Plum-Harbour-Lantern-42")
    with pytest.raises(VerifyMismatchError):
        PRODUCTION_PASSWORDS.verify(password_hash, "Plum-Harbour-Lantern-43")
    assert PRODUCTION_DUMMY_HASH.startswith("$argon2id$v=19$m=47104,t=2,p=1$")


def test_only_this_test_process_uses_the_cheap_hasher() -> None:
    assert security.PASSWORDS is TEST_PASSWORDS
    assert TEST_PASSWORDS.type is Type.ID
    # A hash made with the cheap parameters is upgraded by production at the next login.
    assert PRODUCTION_PASSWORDS.check_needs_rehash(TEST_PASSWORDS.hash("x"))

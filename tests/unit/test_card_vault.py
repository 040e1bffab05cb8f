from __future__ import annotations

import pytest

from banking.cards.vault import (
    Vault,
    VaultError,
    generate_cvv,
    generate_pan,
    luhn_check_digit,
    luhn_valid,
)

OLD = "old-card-key-0123456789abcdef0123456789abcdef"
NEW = "new-card-key-0123456789abcdef0123456789abcdef"


class TestLuhn:
    @pytest.mark.parametrize("number", ["4111111111111111", "5555555555554444", "79927398713"])
    def test_known_valid_numbers_pass(self, number: str) -> None:
        assert luhn_valid(number)

    def test_a_changed_digit_fails(self) -> None:
        assert not luhn_valid("4111111111111112")
        assert luhn_check_digit("7992739871") == "3"

    def test_generated_pans_are_valid_and_carry_the_bin(self) -> None:
        for _ in range(200):
            pan = generate_pan("400000")
            assert len(pan) == 16
            assert pan.startswith("400000")
            assert luhn_valid(pan)

    def test_cvv_is_three_digits(self) -> None:
        assert all(len(generate_cvv()) == 3 and generate_cvv().isdigit() for _ in range(50))


class TestVault:
    def test_round_trip_and_no_plaintext_in_the_ciphertext(self) -> None:
        vault = Vault(NEW)
        key_id, blob = vault.encrypt_pan("4000001234567899", card_id="card-1")
        assert b"4000001234567899" not in blob
        assert vault.decrypt_pan(key_id, blob, card_id="card-1") == "4000001234567899"

    def test_ciphertext_is_bound_to_its_card(self) -> None:
        vault = Vault(NEW)
        key_id, blob = vault.encrypt_pan("4000001234567899", card_id="card-1")
        with pytest.raises(VaultError):
            vault.decrypt_pan(key_id, blob, card_id="card-2")

    def test_tampering_is_detected(self) -> None:
        vault = Vault(NEW)
        key_id, blob = vault.encrypt_pan("4000001234567899", card_id="card-1")
        tampered = blob[:-1] + bytes([blob[-1] ^ 1])
        with pytest.raises(VaultError):
            vault.decrypt_pan(key_id, tampered, card_id="card-1")

    def test_rotation_keeps_old_rows_readable_and_new_rows_use_the_new_key(self) -> None:
        old_vault = Vault(OLD)
        old_id, old_blob = old_vault.encrypt_pan("4000001234567899", card_id="c")
        rotated = Vault(NEW, [OLD])
        assert rotated.decrypt_pan(old_id, old_blob, card_id="c") == "4000001234567899"
        new_id, _ = rotated.encrypt_pan("4000001234567899", card_id="c")
        assert new_id != old_id
        with pytest.raises(VaultError):
            Vault(NEW).decrypt_pan(old_id, old_blob, card_id="c")

    def test_cvv_digest_verifies_without_revealing(self) -> None:
        vault = Vault(NEW)
        digest = vault.cvv_digest("123", card_id="c")
        assert "123" not in digest
        key_id = vault.current.key_id
        assert vault.verify_cvv("123", card_id="c", key_id=key_id, expected=digest)
        assert not vault.verify_cvv("124", card_id="c", key_id=key_id, expected=digest)
        assert not vault.verify_cvv("123", card_id="other", key_id=key_id, expected=digest)

    def test_pan_digest_is_stable_per_key_and_differs_across_keys(self) -> None:
        assert Vault(NEW).pan_digest("4000001234567899") == Vault(NEW).pan_digest(
            "4000001234567899"
        )
        assert Vault(NEW).pan_digest("4000001234567899") != Vault(OLD).pan_digest(
            "4000001234567899"
        )
        assert len(Vault(NEW, [OLD]).pan_digests("4000001234567899")) == 2

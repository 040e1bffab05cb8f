from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from banking.core.schemas import Amount, Description, Schema


class TestAmount:
    @pytest.mark.parametrize("raw", ["100", 10.0, True, 0, -1, 2**63, 10**30])
    def test_only_positive_integers_inside_64_bits_are_amounts(self, raw: object) -> None:
        with pytest.raises(ValidationError):
            TypeAdapter(Amount).validate_python(raw)

    def test_a_plain_integer_is_an_amount(self) -> None:
        assert TypeAdapter(Amount).validate_python(12_345) == 12_345


class TestText:
    @pytest.mark.parametrize("raw", ["a\x00b", "line\nbreak", "zero\u200bwidth", "x" * 141, 5])
    def test_text_rejects_control_characters_overlong_and_non_strings(self, raw: object) -> None:
        with pytest.raises(ValidationError):
            TypeAdapter(Description).validate_python(raw)

    def test_text_is_stripped(self) -> None:
        assert TypeAdapter(Description).validate_python("  rent  ") == "rent"


def test_unknown_fields_are_rejected() -> None:
    class Body(Schema):
        name: str

    with pytest.raises(ValidationError):
        Body.model_validate({"name": "x", "role": "admin"})

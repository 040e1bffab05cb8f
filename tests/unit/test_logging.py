from __future__ import annotations

from banking.core.logging import REDACTED, redact, redact_value
from banking.core.middleware import _REQUEST_ID, new_request_id


def test_secret_fields_are_redacted_at_any_depth() -> None:
    event = {
        "event": "x",
        "password": "hunter2",
        "refresh_token": "abc",
        "nested": {
            "card_number": "4111111111111111",
            "cvv": "123",
            "ok": "fine",
            "items": [{"jwt_secret": "s"}, {"pan": "5555"}],
        },
        "Authorization": "Bearer abc.def",
        "company": "ACME",
    }
    out = redact(None, "info", dict(event))
    assert out["password"] == REDACTED
    assert out["refresh_token"] == REDACTED
    assert out["Authorization"] == REDACTED
    assert out["nested"]["card_number"] == REDACTED
    assert out["nested"]["cvv"] == REDACTED
    assert out["nested"]["items"][0]["jwt_secret"] == REDACTED
    assert out["nested"]["items"][1]["pan"] == REDACTED
    assert out["nested"]["ok"] == "fine"
    assert out["company"] == "ACME"


def test_card_numbers_and_bearer_tokens_in_free_text_are_masked() -> None:
    out = redact(None, "info", {"event": "paid with 4111 1111 1111 1111 then Bearer eyJ.abc.def"})
    assert "4111" not in out["event"]
    assert "eyJ" not in out["event"]
    assert "then" in out["event"]


def test_generated_request_ids_are_unique_valid_and_never_redacted() -> None:

    ids = [new_request_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    for request_id in ids:
        assert _REQUEST_ID.match(request_id)
        assert redact_value(request_id) == request_id

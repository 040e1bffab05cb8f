from __future__ import annotations

import json
import logging
import re
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from banking.core.logging import REDACTED, configure_logging, get_logger, redact, redact_value
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


def test_exception_logs_carry_the_traceback_but_no_frame_locals(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", "json")
    log = get_logger("banking.test")
    body_repr = "SignupIn(email='ada@example.com', password='Correct-Horse-Battery-9')"
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed", error_type="ValueError", note=len(body_repr))
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["event"] == "failed"
    assert line["level"] == "error"
    assert line["exception"][0]["exc_type"] == "ValueError"
    assert "Correct-Horse-Battery-9" not in json.dumps(line)


@pytest.mark.parametrize("fmt", ["json", "console"])
@pytest.mark.parametrize("through", ["structlog", "stdlib"])
def test_no_log_format_prints_frame_locals(
    capsys: pytest.CaptureFixture[str], fmt: str, through: str
) -> None:
    configure_logging("INFO", fmt)

    def handle(body: dict[str, str]) -> None:
        password = body["password"]
        raise ValueError(f"bad input of {len(password)} characters")

    try:
        handle({"email": "ada@example.com", "password": "Correct-Horse-Battery-9"})
    except ValueError:
        if through == "structlog":
            get_logger("banking.test").exception("failed")
        else:
            logging.getLogger("uvicorn.error").exception("failed")
    output = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().err)
    assert "ValueError" in output
    assert "bad input of 23 characters" in output
    assert "Correct-Horse-Battery-9" not in output


def test_sentry_is_started_without_frame_locals_or_request_bodies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sentry_sdk

    from banking import app as application
    from banking.core.config import Settings

    seen: dict[str, object] = {}
    monkeypatch.setattr(sentry_sdk, "init", lambda **options: seen.update(options))
    application._init_sentry(
        Settings(_env_file=None, sentry_dsn="https://key@sentry.example.com/1")  # type: ignore[call-arg]
    )
    assert seen["include_local_variables"] is False
    assert seen["max_request_body_size"] == "never"
    assert seen["send_default_pii"] is False


def test_events_below_the_level_are_dropped_and_the_level_can_change(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = get_logger("banking.test")
    configure_logging("WARNING", "json")
    log.info("quiet")
    log.warning("loud")
    configure_logging("INFO", "json")
    log.info("now heard")
    events = [json.loads(line)["event"] for line in capsys.readouterr().err.splitlines()]
    assert events == ["loud", "now heard"]


def test_alembic_announcing_its_plugins_is_not_logged_at_start(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import logging

    from alembic.runtime import plugins

    configure_logging("INFO", "json")
    # What importing Alembic's plugins logs on every start of `banking serve`/`migrate`.
    plugins.log.info("setup plugin %s", "alembic.autogenerate.schemas")
    plugins.log.warning("a plugin failed")
    logging.getLogger("banking.test.stdlib").info("still heard")
    events = [json.loads(line)["event"] for line in capsys.readouterr().err.splitlines()]
    assert events == ["a plugin failed", "still heard"]


def test_uuids_are_never_taken_for_card_numbers() -> None:
    # Hex groups that happen to be digits: 13+ digits in a row across the hyphens.
    ids = [
        "0431ea87-7451-2345-8a6b-7c350d62d273",
        "12345678-1234-1234-1234-123456789012",
        str(uuid.UUID(int=4_000_123_456_789_010)),
    ]
    for value in ids:
        assert redact_value(value) == value
        assert redact_value(f"account {value} frozen") == f"account {value} frozen"
        assert redact({}, "info", {"user_id": value})["user_id"] == value
    # A card number next to a UUID is still masked.
    text = f"{ids[0]} paid with 4000 1234 5678 9010"
    assert redact_value(text) == f"{ids[0]} paid with {REDACTED}"
    assert redact_value("4000-1234-5678-9010") == REDACTED


_TWO_PASS_BEARER = re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+")
_TWO_PASS_UUID_OR_CARD = re.compile(
    r"(?P<uuid>\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b)"
    r"|(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)"
)


def _two_passes(text: str) -> str:
    """The scrubbing as it was: bearer credentials first, then UUIDs and card numbers."""
    text = _TWO_PASS_BEARER.sub("Bearer " + REDACTED, text)
    return _TWO_PASS_UUID_OR_CARD.sub(
        lambda match: match.group(0) if match.group("uuid") is not None else REDACTED, text
    )


_PIECES = st.sampled_from(
    [
        "Bearer ",
        "bEaReR\t",
        "4111111111111111",
        "4111 1111 1111 1111",
        "-",
        " ",
        "a",
        "f",
        "0",
        "7",
        "x",
        "/",
        "=",
        "\n",
        str(uuid.UUID(int=0x12345678_1234_1234_1234_123456789012)),
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=12).map("".join))
def test_one_pass_scrubs_as_the_two_passes_did(text: str) -> None:
    assert redact_value(text) == _two_passes(text)
    # Remembered texts come back the same the second time.
    assert redact_value(text) == _two_passes(text)

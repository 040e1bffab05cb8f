"""Structured logs: JSON lines in production, readable lines in development.

No format prints stack-frame locals (a local can hold a password or a request body) and
no code logs request bodies; `tests/unit/test_logging.py` checks both renderers.

Every event passes through `redact`, which masks values of keys that look like secrets
(password, token, secret, pan, card_number, cvv, authorization ...) at any depth, and any
run of 13-19 digits in a string value (a card number in free text).
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import structlog
import structlog.tracebacks

REDACTED = "[REDACTED]"
_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

_SECRET_WORDS = frozenset({"pan", "cvv", "cvc", "pin", "otp"})
_SECRET_FRAGMENTS = (
    "password",
    "passwd",
    "token",
    "secret",
    "card_number",
    "cardnumber",
    "authorization",
    "api_key",
    "apikey",
    "cookie",
    "credential",
    "private_key",
    "network_key",
    "password_hash",
)
_CARD_LIKE = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(request_id: str | None) -> Any:
    return _request_id.set(request_id)


def reset_request_id(token: Any) -> None:
    _request_id.reset(token)


@functools.lru_cache(maxsize=1024)
def is_secret_key(key: str) -> bool:
    # Cached: the same few field names come back in every log line.
    lowered = key.lower().replace("-", "_")
    if any(fragment in lowered for fragment in _SECRET_FRAGMENTS):
        return True
    return any(part in _SECRET_WORDS for part in lowered.split("_"))


# A UUID's hex groups can hold 13 or more digits in a row (e.g. `…87-7451-2345-6…`), which
# the card pattern alone would mask: ids in log lines (user_id, account ids) would be
# mangled. Canonical UUIDs are matched first, as a whole, and kept. One pass over the
# text finds bearer credentials, UUIDs and card-like runs alike.
_SCRUBBED = re.compile(
    r"(?P<bearer>(?i:bearer)\s+[A-Za-z0-9._~+/=-]+)"
    r"|(?P<uuid>\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b)"
    r"|" + _CARD_LIKE.pattern
)


def _scrub_match(match: re.Match[str]) -> str:
    if match.group("bearer") is not None:
        return "Bearer " + REDACTED
    return match.group(0) if match.group("uuid") is not None else REDACTED


# Short texts seen before (an access line's method, route template, level, logger name,
# client address come back on every line) are scrubbed once. Bounded: texts a client
# invents stop being remembered when it is full, and are scrubbed each time.
_SCRUB_CACHE: dict[str, str] = {}
_SCRUB_CACHE_MAX = 4096
_SCRUB_CACHE_TEXT_MAX = 64


def _scrub_text(text: str) -> str:
    done = _SCRUB_CACHE.get(text)
    if done is not None:
        return done
    done = _SCRUBBED.sub(_scrub_match, text)
    if len(text) <= _SCRUB_CACHE_TEXT_MAX and len(_SCRUB_CACHE) < _SCRUB_CACHE_MAX:
        _SCRUB_CACHE[text] = done
    return done


def redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return _scrub_text(value)
    if isinstance(value, dict):
        return {
            key: REDACTED if isinstance(key, str) and is_secret_key(key) else redact_value(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set):
        return [redact_value(item) for item in value]
    return value


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if is_secret_key(key):
            event[key] = REDACTED
        else:
            event[key] = redact_value(event[key])
    return event


def _add_request_id(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    request_id = _request_id.get()
    if request_id is not None and "request_id" not in event:
        event["request_id"] = request_id
    return event


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
    """Writes to whatever `sys.stderr` is at emit time (test capture replaces it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


class _StderrWriter:
    """structlog's logger for the service's own code: each event is one line written to
    whatever `sys.stderr` is at that moment (test capture replaces it).

    Our own events skip the standard library's logging machinery (a `LogRecord`, caller
    lookup, handler locks, a copied record in the formatter): that took more CPU than the
    rendering itself, on every request's access line. Other libraries' records (uvicorn,
    SQLAlchemy) still go through `logging` and the same redaction and rendering.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def msg(self, message: str) -> None:
        stream = sys.stderr
        stream.write(message + "\n")
        stream.flush()

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def _writer_factory(*args: Any) -> _StderrWriter:
    return _StderrWriter(str(args[0]) if args else "banking")


@dataclass(slots=True)
class _Output:
    """What `configure_logging` chose last; read per event, so that loggers cached by
    structlog follow a later configuration (tests configure once per application)."""

    level: int = logging.INFO
    tail: tuple[Any, ...] = ()
    renderer: Any = None


_OUTPUT = _Output()
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}


def _below_level(
    _logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    if _LEVELS.get(method, logging.INFO) < _OUTPUT.level:
        raise structlog.DropEvent
    if method == "exception":
        # As `logging.exception` does: the exception being handled goes with the event.
        event.setdefault("exc_info", True)
    return event


def _render(logger: Any, method: str, event: MutableMapping[str, Any]) -> Any:
    for processor in _OUTPUT.tail:
        event = processor(logger, method, event)
    return _OUTPUT.renderer(logger, method, redact(logger, method, event))


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Route structlog and stdlib logging (uvicorn, SQLAlchemy) through one redacting pipeline."""
    shared: list[Any] = [
        _add_request_id,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
        # Structured tracebacks without frame locals: a local's repr (a request body, a
        # model) can carry a password or token that no field name would flag.
        tail: list[Any] = [
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            )
        ]
    else:
        # Its default traceback formatter (rich, when installed) prints every frame's locals.
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(),
            exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False),
        )
        tail = []
    numeric_level = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    _OUTPUT.level, _OUTPUT.tail, _OUTPUT.renderer = numeric_level, tuple(tail), renderer
    structlog.configure(
        processors=[_below_level, *shared, _render],
        logger_factory=_writer_factory,
        wrapper_class=structlog.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *tail,
            redact,
            renderer,
        ],
    )
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # aiosqlite logs every statement with its parameters at DEBUG (password hashes,
    # token digests): keep it quiet whatever the level.
    logging.getLogger("aiosqlite").setLevel(max(logging.INFO, root.level))
    # Our middleware writes the access log; uvicorn's would duplicate it without ids.
    logging.getLogger("uvicorn.access").handlers[:] = []
    logging.getLogger("uvicorn.access").propagate = False
    # Alembic announces each of its plugins at INFO on every start (seven lines of noise
    # before the server's own): keep its warnings only.
    logging.getLogger("alembic.runtime.plugins").setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)

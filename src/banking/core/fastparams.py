"""Path, query, header and cookie parameters read with what FastAPI works out once per field.

FastAPI's `request_params_to_args` works out, for every parameter of every request, facts
that never change for a given parameter: whether it is a model of parameters, its aliases,
whether its annotation is a sequence, where it comes from. On a route with seven query
parameters (the history) that took more CPU than the route's reads. `install()` wraps it:
for a parameter whose facts are plain (not a model, not a sequence, not JSON) it reads and
validates the value exactly as FastAPI does, with the facts kept from the first request;
anything else, and any other mapping than the request's own (form data), goes to
FastAPI's own function, unchanged. `tests/unit/test_fastparams.py` checks both give the
same values and errors for every route's parameters.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from copy import deepcopy
from dataclasses import dataclass
from typing import Any, cast

from starlette.datastructures import FormData

try:
    import fastapi.dependencies.utils as _utils
    from fastapi._compat import get_missing_field_error
    from fastapi._compat.shared import field_annotation_is_sequence
except ImportError:  # pragma: no cover - another FastAPI: its own function only
    _utils = None  # type: ignore[assignment]

# Defaults that need no copy per request (FastAPI deep-copies every default).
_IMMUTABLE = (type(None), bool, int, float, str, bytes, enum.Enum, frozenset, tuple)


@dataclass(frozen=True, slots=True)
class _Plan:
    name: str
    where: str
    aliases: tuple[str, ...]
    required: bool
    default: Any
    copy_default: bool
    validate_default: bool


# Each parameter's plan is kept on the field itself, so it lives as long as its app.
_ATTRIBUTE = "_banking_param_plan"
_UNSET = object()


def _plan(field: Any) -> _Plan | None:
    info = field.field_info
    if (
        _utils._get_param_model(field) is not None
        or _utils._is_json_field(field)
        or field_annotation_is_sequence(info.annotation)
    ):
        return None
    aliases = _utils._get_param_aliases(field)
    default = field.default
    return _Plan(
        name=field.name,
        where=info.in_.value,
        aliases=tuple(request_key for _, request_key in aliases),
        required=bool(info.is_required()),
        default=default,
        copy_default=not isinstance(default, _IMMUTABLE)
        or (isinstance(default, tuple) and bool(default)),
        validate_default=bool(info.validate_default),
    )


def _plans(fields: Sequence[Any]) -> list[tuple[Any, _Plan]] | None:
    found = []
    for field in fields:
        cached = getattr(field, _ATTRIBUTE, _UNSET)
        plan: _Plan | None
        if cached is _UNSET:
            plan = _plan(field)
            try:
                setattr(field, _ATTRIBUTE, plan)
            except AttributeError:  # pragma: no cover - a field that takes no attribute
                return None
        else:
            plan = cast("_Plan | None", cached)
        if plan is None:
            return None
        found.append((field, plan))
    return found


def wrap(
    original: Callable[..., tuple[dict[str, Any], list[Any]]],
) -> Callable[..., tuple[dict[str, Any], list[Any]]]:
    def request_params_to_args(
        fields: Sequence[Any], received_params: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[Any]]:
        values: dict[str, Any] = {}
        errors: list[Any] = []
        if not fields:
            return values, errors
        plans = None if isinstance(received_params, FormData) else _plans(fields)
        if plans is None:
            return original(fields, received_params)
        for field, plan in plans:
            alias = plan.aliases[0]
            value = None
            for key in plan.aliases:
                # `in` first: `get` of an absent key raises and catches a KeyError inside
                # Starlette's mappings, once per absent parameter of every request.
                if key in received_params:
                    alias = key
                    value = received_params[key]
                    break
            loc = (plan.where, alias)
            if value is None:
                if plan.required:
                    errors.append(get_missing_field_error(loc=loc))
                    continue
                value = deepcopy(plan.default) if plan.copy_default else plan.default
                if not plan.validate_default:
                    values[plan.name] = value
                    continue
            validated, field_errors = field.validate(value, values, loc=loc)
            if field_errors:
                errors.extend(field_errors)
            else:
                values[plan.name] = validated
        return values, errors

    request_params_to_args.original = original  # type: ignore[attr-defined]
    return request_params_to_args


def install() -> None:
    """Wrap FastAPI's `request_params_to_args` (once per process)."""
    if _utils is None:  # pragma: no cover
        return
    current = _utils.request_params_to_args
    if getattr(current, "original", None) is None:
        _utils.request_params_to_args = wrap(current)

"""The JSON schema of the event payload, made from its TypedDicts (``ingest.store.events``).

Made, not written, so the schema and the code cannot drift apart; README prints it
and ``tests/store/test_event_schema.py`` holds stored payloads of every version to it.
"""

from __future__ import annotations

import types
from typing import (
    Any,
    NotRequired,
    Required,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

from ingest.store.events import PAYLOAD_VERSION, EventPayload

_SCALARS: dict[type, str] = {str: "string", int: "integer", bool: "boolean",
                             type(None): "null"}


def event_schema() -> dict[str, Any]:
    """The JSON schema (draft 2020-12) every event payload validates against."""
    schema = _object(EventPayload)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"ackmail event payload, version {PAYLOAD_VERSION}", **schema}


def _object(typed: Any) -> dict[str, Any]:
    # Read Required/NotRequired from the hints themselves: under postponed annotations
    # the TypedDict's own __required_keys__ cannot see them.
    hints = get_type_hints(typed, include_extras=True)
    required = sorted(name for name, hint in hints.items()
                      if get_origin(hint) is Required
                      or (typed.__total__ and get_origin(hint) is not NotRequired))
    return {
        "type": "object",
        "properties": {name: _of(_unwrapped(hint)) for name, hint in hints.items()},
        "required": required,
        # New fields may come within a version: a receiver must ignore what it does not know.
        "additionalProperties": True,
    }


def _unwrapped(hint: Any) -> Any:
    return get_args(hint)[0] if get_origin(hint) in (Required, NotRequired) else hint


def _of(hint: Any) -> dict[str, Any]:
    if is_typeddict(hint):
        return _object(hint)
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [_of(arg) for arg in get_args(hint)]
        if all(set(option) == {"type"} for option in options):
            return {"type": [option["type"] for option in options]}
        return {"anyOf": options}
    if origin is list:
        (item,) = get_args(hint)
        return {"type": "array", "items": _of(item)}
    return {"type": _SCALARS[hint]}

"""Request bodies read as strict JSON: a key given twice in one object is a 422, not last-wins."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

#: Most duplicated keys one 422 lists (each with its path and values): a 1 MiB body can hold
#: ~100,000 of them, each under a path up to the JSON reader's ~990 levels.
MAX_DUPLICATES_REPORTED = 32
#: What any route with a body may answer before its handler runs (the body-size middleware,
#: this module's route and FastAPI's body parsing): a schema's clients should know them.
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "the body is not JSON (invalid UTF-8, too deeply nested)"},
    413: {"description": "request body over the cap"},
    415: {"description": "the body was sent with a Content-Type other than JSON"},
}


class DuplicateKeyError(HTTPException):
    """A JSON body with a key given twice in one object: a 422 whose ``errors`` are FastAPI's
    validation-error list (``create_app`` answers with them as with any 422).

    An ``HTTPException`` because FastAPI turns any other exception of the body read into a 400.
    """

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(status_code=422, detail=errors[0]["msg"])
        self.errors = errors


def loads_strict(body: bytes) -> Any:
    """``json.loads(body)``, refusing an object that holds a key twice.

    The JSON reader keeps the last of a repeated key's values, silently: ``{"home": "A",
    "home": "B"}`` read as ``"B"``. Everything else is ``json.loads``'s: its errors
    (``JSONDecodeError``, ``UnicodeDecodeError``, ``RecursionError`` past ~990 levels) and what
    it accepts (``NaN``, ``1e400``).

    Raises
    ------
    DuplicateKeyError
        Naming each repeated key (at most `MAX_DUPLICATES_REPORTED`) and where it is.

    Examples
    --------
    >>> loads_strict(b'{"a": [{"b": 1}], "c": 2}')
    {'a': [{'b': 1}], 'c': 2}
    >>> try:
    ...     loads_strict(b'{"a": [{"b": 1, "b": 2}]}')
    ... except DuplicateKeyError as exc:
    ...     print(exc.errors[0]["loc"], exc.errors[0]["input"])
    ['body', 'a', 0, 'b'] [1, 2]
    """
    try:
        return json.loads(body, object_pairs_hook=_unique_keys, parse_int=_integer)
    except _RepeatedKey:
        pass
    # rare: read it again, keeping every value, to say where each repeated key is
    tree = json.loads(body, object_pairs_hook=_Object, parse_int=_integer)
    raise DuplicateKeyError(_duplicate_key_errors(tree))


def _integer(text: str) -> int | float:
    """A JSON integer: an ``int``, or past Python's 4,300-digit limit on reading one a float
    (``inf``), so the schema answers 422 at its field ("finite number") instead of the reader a
    400 ("error parsing the body") for valid JSON.

    Examples
    --------
    >>> _integer("12"), _integer("9" * 5000)
    (12, inf)
    """
    return int(text) if len(text.lstrip("-")) <= _MAX_INT_DIGITS else float(text)


_MAX_INT_DIGITS = sys.get_int_max_str_digits() or 4300


class _RepeatedKey(Exception):
    """Raised out of the JSON reader at the first object holding a key twice."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # the hook of every request body: a dict, and one length check (C) per object
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _RepeatedKey
    return obj


class _Object(dict[str, Any]):
    """A JSON object as the slow read builds it: the last value of each key, as ``json.loads``
    keeps it, plus every value of each repeated key, in the order given."""

    repeated: dict[str, list[Any]]

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.repeated = {}
        if len(self) != len(pairs):
            given: dict[str, list[Any]] = {}
            for key, value in pairs:
                given.setdefault(key, []).append(value)
            self.repeated = {key: values for key, values in given.items() if len(values) > 1}


#: A node of the walk: (the value, its key or index in its parent, the parent's node or None).
_Node = tuple[Any, str | int, Any]


def _duplicate_key_errors(tree: Any) -> list[dict[str, Any]]:
    """One 422 error per repeated key, objects in document order (an object before the ones
    inside it). The walk keeps a parent link per node, not a path: a path is built only for an
    error, so a wide body nested hundreds of levels deep costs no more than its size."""
    errors: list[dict[str, Any]] = []
    stack: list[_Node] = [(tree, "body", None)]
    while stack and len(errors) < MAX_DUPLICATES_REPORTED:
        node = stack.pop()
        value = node[0]
        if isinstance(value, _Object):
            for key, values in value.repeated.items():
                loc = [*_path(node), key]
                where = _dotted(loc)
                errors.append(
                    {
                        "type": "duplicate_key",
                        "loc": loc,
                        "msg": (
                            f"duplicate key {key!r} at {where}: given {len(values)} times in "
                            "one object; give each key once"
                        ),
                        "input": values,
                    }
                )
            children: Any = value.items()
        elif isinstance(value, list):
            children = enumerate(value)
        else:
            continue
        stack.extend(reversed([(child, key, node) for key, child in children]))
    return errors[:MAX_DUPLICATES_REPORTED]


def _path(node: _Node | None) -> list[str | int]:
    path: list[str | int] = []
    while node is not None:
        path.append(node[1])
        node = node[2]
    return path[::-1]


def _dotted(loc: list[str | int]) -> str:
    """``loc`` as a client writes a path: ``body.fixtures[3].odds["1x2"].draw``.

    Examples
    --------
    >>> _dotted(["body", "fixtures", 3, "odds", "1x2", "draw"])
    'body.fixtures[3].odds["1x2"].draw'
    """
    text = str(loc[0])
    for part in loc[1:]:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.isidentifier():
            text += f".{part}"
        else:
            text += f"[{json.dumps(part)}]"
    return text


class StrictJSONRequest(Request):
    """A request whose JSON body is read by `loads_strict` (FastAPI reads bodies with
    ``request.json()``)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_strict(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """An ``APIRoute`` whose JSON body refuses repeated keys (the routes of ``create_app`` and
    ``crypto_router``: ``route_class=StrictJSONRoute``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:  # nothing to read
            return handler

        async def strict_json_handler(request: Request) -> Response:
            strict = StrictJSONRequest(request.scope, request.receive)
            content_type = strict.headers.get("content-type")
            # FastAPI reads a body sent as anything but JSON (curl -d sends it as a form), or
            # with no Content-Type (a CSRF guard), as bytes, and the 422 said "Input should be
            # a valid dictionary" of the whole body
            if not is_json_type(content_type or "") and await strict.body():
                got = repr(content_type[:100]) if content_type else "no Content-Type"
                return JSONResponse(
                    {
                        "detail": "the body must be JSON, sent with Content-Type: "
                        f"application/json (got {got})"
                    },
                    status_code=415,
                )
            return await handler(strict)

        return strict_json_handler


def is_json_type(content_type: str) -> bool:
    """Whether a Content-Type names JSON (``application/json`` or ``application/*+json``, any
    parameters), as FastAPI decides whether to read a body as JSON.

    Examples
    --------
    >>> is_json_type("application/json; charset=utf-8"), is_json_type("application/problem+json")
    (True, True)
    >>> is_json_type("application/x-www-form-urlencoded"), is_json_type("text/plain")
    (False, False)
    """
    mime = content_type.split(";", 1)[0].strip().lower()
    kind, _, subtype = mime.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))

"""Reading request bodies: strict content type, size cap, one JSON parse (orjson)."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response, request

from ..errors import BadRequest, UnsupportedMediaType

JSON_TYPES = frozenset({"application/json", "application/fhir+json"})


def read_json_body() -> Any:
    """Decode the body once. 415 for a wrong content type, 400 for malformed JSON.

    The size cap is enforced by Flask's MAX_CONTENT_LENGTH (413) before we read a byte.
    """
    mimetype = request.mimetype
    if mimetype not in JSON_TYPES:
        raise UnsupportedMediaType(request.headers.get("Content-Type", ""))
    raw = request.get_data(cache=False)
    if not raw:
        raise BadRequest("request body is empty; expected a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc.args[0] if exc.args else 'cannot parse'}") from None


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")

"""Reading a request body: bounded in size (413) and in nesting depth (400).

The body is read chunk by chunk and refused as soon as it passes the limit (a
`Content-Length` above it is refused before reading). JSON is parsed off the event loop
only when it is large; nesting is checked without recursion, so no body can raise
RecursionError (a 500) anywhere later.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from .errors import APIError, bad_request

#: the default `--max-body-bytes`
DEFAULT_MAX_BODY_BYTES = 8 * 2**20
#: how deeply JSON values may nest in a request (objects and lists)
MAX_DEPTH = 64
# bodies above this are parsed on a thread (a few ms of work or more)
_PARSE_OFF_LOOP_BYTES = 256 * 2**10


def too_large(limit: int) -> APIError:
    return APIError(413, f"the request body is larger than this server's limit of {limit} "
                         "bytes (--max-body-bytes)", kind="invalid_request_error")


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, or a 413 once it is longer than `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def check_depth(value: Any, what: str = "the request body", limit: int = MAX_DEPTH) -> None:
    """A 400 if `value` nests objects/lists more than `limit` deep (checked without
    recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item  # type: ignore[assignment]
        else:
            continue
        if depth > limit:
            raise bad_request(f"{what} nests objects or lists more than {limit} levels deep")
        stack.extend((child, depth + 1) for child in children)


def parse_json(raw: bytes) -> Any:
    """The body as JSON: a 400 for invalid JSON, invalid Unicode or too deep nesting."""
    try:
        body = json.loads(raw)
    except RecursionError:
        raise bad_request(f"the request body nests objects or lists more than {MAX_DEPTH} "
                          "levels deep") from None
    except ValueError:  # UnicodeDecodeError included
        raise bad_request("the request body is not valid JSON (UTF-8)") from None
    check_depth(body)
    try:
        # JSON's \ud800 escapes can carry unpaired surrogates, which no tokenizer takes
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request("the request body holds an unpaired surrogate (a \\ud800-\\udfff "
                          "escape without its pair); text must be valid Unicode") from None
    return body


async def read_json(request: Request, limit: int) -> Any:
    """Read and parse a JSON body under the size and depth limits."""
    raw = await read_body(request, limit)
    if len(raw) <= _PARSE_OFF_LOOP_BYTES:
        return parse_json(raw)
    from ..core import aio

    return await aio.wait(aio.run_in_thread(parse_json, raw, name="lmql_nb-json"))

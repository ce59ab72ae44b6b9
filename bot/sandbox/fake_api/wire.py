"""The Bot API's conventions on the wire, shared by every part of the fake server: answers and
errors, parameter decoding (form-encoded and JSON bodies carry values differently) and the few
rules of Telegram's text model the server reproduces."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

JSONDict = dict[str, Any]
Params = dict[str, Any]
Handler = Callable[[Params], Awaitable[Any]]

#: Methods that create a message in a chat; they are what ``sent()`` records, what
#: ``inject_fault(method=None)`` targets and what ``enforce_limits`` counts.
SENDING_METHODS: Final = frozenset(
    {"sendMessage", "sendPhoto", "sendDocument", "forwardMessage", "copyMessage"}
)
SENDING_LOWER: Final = frozenset(m.lower() for m in SENDING_METHODS)


class ApiError(Exception):
    """A Bot API error answer; carried up to the request handler, which renders it."""

    def __init__(
        self,
        code: int,
        description: str,
        retry_after: int | None = None,
        *,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after
        self.migrate_to_chat_id = migrate_to_chat_id


def chat_not_found() -> ApiError:
    return ApiError(400, "Bad Request: chat not found")


def blocked() -> ApiError:
    return ApiError(403, "Forbidden: bot was blocked by the user")


def too_many_requests(retry_after: int) -> ApiError:
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)


@dataclass
class Upload:
    """A file part of a multipart request."""

    filename: str | None
    data: bytes
    content_type: str | None


def now() -> int:
    """Unix time in seconds: PTB rejects millisecond dates."""
    return int(time.time())


def utf16_len(text: str) -> int:
    """Entity offsets and lengths are counted in UTF-16 code units, as Telegram does."""
    return len(text.encode("utf-16-le")) // 2


def command_entities(text: str) -> list[JSONDict]:
    """Give a leading ``/command`` its bot_command entity, which PTB's CommandHandler needs."""
    if not text.startswith("/"):
        return []
    word = text.split(maxsplit=1)[0]
    if len(word) < 2:
        return []
    return [{"type": "bot_command", "offset": 0, "length": utf16_len(word)}]


def as_int(value: object, name: str) -> int:
    """Form-encoded requests carry every value as a string; accept both encodings."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return int(value.strip())
    raise ApiError(400, f"Bad Request: invalid {name} specified")


def as_float(value: object, name: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return float(value.strip())
    raise ApiError(400, f"Bad Request: invalid {name} specified")


def as_bool(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1"}
    return bool(value)


def as_json(value: object, name: str) -> Any:
    """Objects arrive as JSON strings in form data and as objects in JSON bodies."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ApiError(400, f"Bad Request: can't parse {name} JSON object") from None
    return value


def opt_str(params: Params, name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return str(value)


def json_response(payload: object, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(payload, ensure_ascii=False).encode(),
        status=status,
        content_type="application/json",
    )


def error_response(error: ApiError) -> web.Response:
    """The Bot API's error object, with ``parameters.retry_after`` for a 429 and
    ``parameters.migrate_to_chat_id`` for a group that became a supergroup."""
    payload: JSONDict = {
        "ok": False,
        "error_code": error.code,
        "description": error.description,
    }
    if error.retry_after is not None:
        payload["parameters"] = {"retry_after": error.retry_after}
    if error.migrate_to_chat_id is not None:
        payload["parameters"] = {"migrate_to_chat_id": error.migrate_to_chat_id}
    return json_response(payload, status=error.code)

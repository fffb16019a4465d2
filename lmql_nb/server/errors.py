"""The errors the server answers with, in OpenAI's error shape."""

from __future__ import annotations

from typing import Optional


class APIError(Exception):
    """An error the client caused or should see: becomes a JSON error response.

    The body is OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, which
    the official client turns into the exception message.
    """

    def __init__(self, status: int, message: str, param: Optional[str] = None,
                 kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.kind = kind

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param,
                          "code": self.status}}


def bad_request(message: str, param: Optional[str] = None) -> APIError:
    """A 400: the request is malformed or asks for something this server cannot do."""
    return APIError(400, message, param)


def not_found(message: str, param: Optional[str] = None) -> APIError:
    return APIError(404, message, param, kind="not_found_error")


def unauthorized() -> APIError:
    return APIError(401, "missing or wrong API key: send 'Authorization: Bearer <key>'",
                    kind="authentication_error")

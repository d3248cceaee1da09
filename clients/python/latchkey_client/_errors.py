"""Typed exceptions: one class per kind of failure, each carrying latchkey's error code."""

from typing import Any, Dict, List, Optional, Type

__all__ = [
    "LatchkeyError",
    "ConfigurationError",
    "AuthenticationError",
    "NotFoundError",
    "NotConnectedError",
    "ReauthorizationRequiredError",
    "ProviderConfigurationError",
    "InvalidRequestError",
    "UpstreamError",
    "ServerError",
    "InvalidResponseError",
    "LatchkeyTimeoutError",
    "LatchkeyConnectionError",
    "McpHttpError",
    "WebhookVerificationError",
]


class LatchkeyError(Exception):
    """An error reported by latchkey, or a failure to reach it.

    Attributes: ``status`` (HTTP status, ``0`` when no response came),
    ``code`` (latchkey's snake_case error code, e.g. ``not_connected``) and
    ``message``. Neither ``str()`` nor ``repr()`` ever contains the API key.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, code, message)
        self.status = status
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return "latchkey error %s %s: %s" % (self.status, self.code, self.message)

    def __repr__(self) -> str:
        return "%s(status=%r, code=%r, message=%r)" % (
            type(self).__name__,
            self.status,
            self.code,
            self.message,
        )


class ConfigurationError(LatchkeyError, ValueError):
    """The client was set up or called without something it needs (base URL, API key, user id)."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "configuration_error", message)


class AuthenticationError(LatchkeyError):
    """``invalid_api_key``: the API key is missing, malformed, unknown or revoked."""


class NotFoundError(LatchkeyError):
    """``not_found`` / ``unknown_provider``: no such session, provider, connection or tool."""


class NotConnectedError(LatchkeyError):
    """``not_connected``: the user has not connected this provider (start an auth session)."""


class ReauthorizationRequiredError(LatchkeyError):
    """``reauthorization_required``: the provider refused a refresh; the user must connect again."""


class ProviderConfigurationError(LatchkeyError):
    """``provider_not_configured`` / ``provider_misconfigured``: the project's provider setup."""


class InvalidRequestError(LatchkeyError):
    """``invalid_request``, ``body_too_large`` or (tools API) ``validation_error``.

    ``errors`` holds the tools API's 422 ``detail`` list (``loc``, ``msg``, ``type``), else ``[]``.
    """

    def __init__(self, status: int, code: str, message: str, errors: Optional[List[Dict[str, Any]]] = None) -> None:
        super().__init__(status, code, message)
        self.errors = list(errors or [])


class UpstreamError(LatchkeyError):
    """``upstream_error``, ``upstream_refused``, ``upstream_timeout``, ...: the provider or MCP server."""


class ServerError(LatchkeyError):
    """A 5xx from latchkey itself (``internal_error``, ``temporarily_unavailable``, or a bare 5xx)."""


class InvalidResponseError(LatchkeyError):
    """``invalid_response``: latchkey answered something that is not the JSON it should be."""


class LatchkeyTimeoutError(LatchkeyError):
    """``request_timeout`` (no answer within the client's ``timeout``) or ``session_timeout``
    (:meth:`wait_for_session` gave up while the session was still pending)."""


class LatchkeyConnectionError(LatchkeyError):
    """``connection_error``: latchkey could not be reached at all."""


class McpHttpError(LatchkeyError):
    """``mcp_http_error``: the tool's MCP server answered a forwarded message with an HTTP error
    of its own (for example its 401 challenge before the tool is connected, or a 403
    ``insufficient_scope``). ``www_authenticate`` and ``content`` are the server's."""

    def __init__(self, status: int, message: str, www_authenticate: Optional[str], content: bytes) -> None:
        super().__init__(status, "mcp_http_error", message)
        self.www_authenticate = www_authenticate
        self.content = content


class WebhookVerificationError(LatchkeyError):
    """:func:`verify_webhook` refused a delivery: ``missing_header``, ``invalid_timestamp``,
    ``timestamp_out_of_tolerance``, ``invalid_signature`` or ``invalid_body``. Answer it with a
    4xx and do not act on it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(0, code, message)


_BY_CODE: Dict[str, Type[LatchkeyError]] = {
    "invalid_api_key": AuthenticationError,
    "not_found": NotFoundError,
    "unknown_provider": NotFoundError,
    "not_connected": NotConnectedError,
    "reauthorization_required": ReauthorizationRequiredError,
    "provider_not_configured": ProviderConfigurationError,
    "provider_misconfigured": ProviderConfigurationError,
    "invalid_request": InvalidRequestError,
    "body_too_large": InvalidRequestError,
    "validation_error": InvalidRequestError,
    "upstream_error": UpstreamError,
    "upstream_refused": UpstreamError,
    "upstream_response_too_large": UpstreamError,
    "upstream_timeout": UpstreamError,
    "internal_error": ServerError,
    "temporarily_unavailable": ServerError,
    "invalid_response": InvalidResponseError,
}


def error_class(code: str, status: int) -> Type[LatchkeyError]:
    """The exception class for latchkey's ``code``, else for the HTTP ``status``."""
    cls = _BY_CODE.get(code)
    if cls is not None:
        return cls
    if status == 401:
        return AuthenticationError
    if status == 404:
        return NotFoundError
    if status in (400, 413, 422):
        return InvalidRequestError
    if status >= 500:
        return ServerError
    return LatchkeyError


# The tools API answers in the Selise Blocks reference's shapes ({"detail": ...}, no code): the
# client names the code from the status.
_TOOL_CODES = {
    400: "invalid_request",
    401: "invalid_api_key",
    404: "not_found",
    409: "conflict",
    413: "body_too_large",
    422: "validation_error",
    500: "internal_error",
    502: "upstream_error",
    503: "temporarily_unavailable",
    504: "upstream_timeout",
}


def tool_code(status: int, detail: str, forwarding: bool) -> str:
    if status == 401 and detail != "Invalid project key":
        # Forwarding: the tool's refresh was refused (authorize it again); complete-oauth: the
        # authorization server refused latchkey's token exchange.
        return "reauthorization_required" if forwarding else "upstream_refused"
    return _TOOL_CODES.get(status, "http_error")

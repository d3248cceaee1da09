"""Python clients for latchkey: ``AsyncLatchkey`` (asyncio, httpx) and ``Latchkey`` (blocking,
standard library only). Example::

    from latchkey_client import AsyncLatchkey

    async with AsyncLatchkey("http://127.0.0.1:8080", "lk_ak_...", user_id="user-1") as client:
        session = await client.create_auth_session("google")
        print("open:", session["auth_url"])
        await client.wait_for_session(session["session_id"])
        print((await client.proxy_get("google", "gmail/v1/users/me/profile")).json())
"""

from typing import Any

from ._core import ProxyResponse, __version__
from ._errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidRequestError,
    InvalidResponseError,
    LatchkeyConnectionError,
    LatchkeyError,
    LatchkeyTimeoutError,
    McpHttpError,
    NotConnectedError,
    NotFoundError,
    ProviderConfigurationError,
    ReauthorizationRequiredError,
    ServerError,
    UpstreamError,
    WebhookVerificationError,
)
from ._sync import Latchkey
from ._webhooks import verify_webhook

__all__ = [
    "AsyncLatchkey",
    "Latchkey",
    "ProxyResponse",
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
    "verify_webhook",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # httpx is imported only when AsyncLatchkey is used, so the blocking client needs nothing
    # beyond the standard library.
    if name == "AsyncLatchkey":
        from ._async import AsyncLatchkey

        return AsyncLatchkey
    raise AttributeError("module %r has no attribute %r" % (__name__, name))

"""``AsyncLatchkey``: the asyncio client, on ``httpx`` (the HTTP client the MCP Python SDK uses)."""

import asyncio
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence

import httpx

from ._core import Call, Core, Data, Params, ProxyResponse, Request, Response
from ._errors import LatchkeyConnectionError, LatchkeyTimeoutError


class AsyncLatchkey:
    """asyncio client for a latchkey server: the methods of :class:`Latchkey`, awaited.

    :param base_url: e.g. ``"http://127.0.0.1:8080"`` (a path prefix is kept).
    :param api_key: the ``lk_ak_...`` key, sent as ``X-API-Key``.
    :param user_id: the user this client acts for (sessions, connections, proxy); each of those
        methods also takes ``user_id=`` for another user.
    :param timeout: seconds each request may wait on the network.

    Use ``async with AsyncLatchkey(...) as client:`` or ``await client.aclose()`` to close its
    connections.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        user_id: Optional[str] = None,
        timeout: float = 30.0,
    ) -> None:
        self._c = Core(base_url, api_key, user_id, timeout)
        self._http: Optional[httpx.AsyncClient] = None

    def __repr__(self) -> str:
        return "AsyncLatchkey(base_url=%r, user_id=%r)" % (self.base_url, self.user_id)

    async def __aenter__(self) -> "AsyncLatchkey":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections."""
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

    base_url = property(lambda self: self._c.base_url, doc="latchkey's base URL, without a trailing slash.")
    timeout = property(lambda self: self._c.timeout, doc="Seconds each request may wait on the network.")
    connections = property(
        lambda self: self._c.connections,
        doc="The user's connections by provider, loaded by initialize(); None before.",
    )

    @property
    def user_id(self) -> Optional[str]:
        """The user this client acts for."""
        return self._c.user_id

    @user_id.setter
    def user_id(self, value: Optional[str]) -> None:
        self._c.user_id = value

    # ------------------------------------------------------------------ identity

    async def create_auth_session(
        self,
        provider: str,
        *,
        user_id: Optional[str] = None,
        scopes: Optional[Sequence[str]] = None,
        return_url: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Start an OAuth connection to ``provider`` for the client's user (or ``user_id``);
        send the user to the returned ``auth_url``. With ``return_url``, confirm the connection
        with :meth:`confirm_session` (see the sync client)."""
        return await self._run(self._c.create_auth_session(provider, user_id, scopes, return_url))

    async def confirm_session(self, session_id: str, connect_token: str) -> Dict[str, Any]:
        """Confirm a ``return_url`` session's connection with its one-time ``connect_token``."""
        return await self._run(self._c.confirm_session(session_id, connect_token))

    async def check_session_status(self, session_id: str) -> Dict[str, Any]:
        """The session's status: ``pending``, ``awaiting_confirmation``, ``complete``, ``error``
        (with ``error``) or ``expired``."""
        return await self._run(self._c.check_session_status(session_id))

    async def wait_for_session(
        self, session_id: str, *, timeout: float = 300.0, interval: float = 2.0
    ) -> Dict[str, Any]:
        """Poll until the session is no longer ``pending``; return its final status. Raises
        :class:`LatchkeyTimeoutError` (code ``session_timeout``) if still pending after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            status = await self.check_session_status(session_id)
            if status.get("status") != "pending":
                return status
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._c.session_timeout(session_id, timeout)
            await asyncio.sleep(max(0.0, min(interval, remaining)))

    async def initialize(self) -> List[Dict[str, Any]]:
        """Load the client's user's connections into ``self.connections`` (by provider) and
        return them. Also checks the API key: a bad one raises ``AuthenticationError``."""
        return await self._run(self._c.initialize())

    async def list_connections(self, user_id: Optional[str] = None) -> List[Dict[str, Any]]:
        return await self._run(self._c.list_connections(user_id))

    async def delete_connection(self, provider: str, user_id: Optional[str] = None) -> Dict[str, Any]:
        """Revoke the connection at the provider (best effort) and delete it."""
        return await self._run(self._c.delete_connection(provider, user_id))

    # ------------------------------------------------------------------ webhooks

    async def create_webhook(self, url: str, events: Optional[Sequence[str]] = None) -> Dict[str, Any]:
        """Subscribe ``url`` to ``events`` (default: every event). The answer's ``secret``
        (``whsec_...``) is shown only here: keep it for :func:`verify_webhook`."""
        return await self._run(self._c.create_webhook(url, events))

    async def list_webhooks(self) -> List[Dict[str, Any]]:
        """The project's webhooks ``{webhook_id, url, events, created_at}``, without secrets."""
        return await self._run(self._c.list_webhooks())

    async def get_webhook(self, webhook_id: str) -> Dict[str, Any]:
        """The webhook, with ``failures``: its newest deliveries that exhausted their retries."""
        return await self._run(self._c.get_webhook(webhook_id))

    async def delete_webhook(self, webhook_id: str) -> Dict[str, Any]:
        return await self._run(self._c.delete_webhook(webhook_id))

    # --------------------------------------------------------------------- proxy

    async def proxy_request(
        self,
        method: str,
        provider: str,
        path: str,
        *,
        user_id: Optional[str] = None,
        params: Params = None,
        json: Any = None,
        data: Data = None,
        headers: Optional[Mapping[str, str]] = None,
        api_host: Optional[str] = None,
    ) -> ProxyResponse:
        """Call the provider's API through latchkey. Upstream 4xx/5xx are returned, not raised;
        latchkey's own errors (not connected, ...) raise :class:`LatchkeyError`."""
        return await self._run(
            self._c.proxy_request(
                method,
                provider,
                path,
                user_id=user_id,
                params=params,
                json=json,
                data=data,
                headers=headers,
                api_host=api_host,
            )
        )

    async def proxy_get(self, provider: str, path: str, **kw: Any) -> ProxyResponse:
        return await self.proxy_request("GET", provider, path, **kw)

    async def proxy_post(self, provider: str, path: str, **kw: Any) -> ProxyResponse:
        return await self.proxy_request("POST", provider, path, **kw)

    async def proxy_put(self, provider: str, path: str, **kw: Any) -> ProxyResponse:
        return await self.proxy_request("PUT", provider, path, **kw)

    async def proxy_patch(self, provider: str, path: str, **kw: Any) -> ProxyResponse:
        return await self.proxy_request("PATCH", provider, path, **kw)

    async def proxy_delete(self, provider: str, path: str, **kw: Any) -> ProxyResponse:
        return await self.proxy_request("DELETE", provider, path, **kw)

    # --------------------------------------------------------------------- tools

    async def create_tool(
        self,
        name: str,
        server_url: str,
        *,
        redirect_uris: Optional[Sequence[str]] = None,
        scopes: Optional[Sequence[str]] = None,
        client_id: Optional[str] = None,
        client_secret: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Register a remote MCP server; the answer's ``item_id`` is the tool id."""
        return await self._run(
            self._c.create_tool(name, server_url, redirect_uris, scopes, client_id, client_secret)
        )

    async def get_tool(self, tool_id: str) -> Dict[str, Any]:
        return await self._run(self._c.get_tool(tool_id))

    async def delete_tool(self, tool_id: str) -> Dict[str, Any]:
        return await self._run(self._c.delete_tool(tool_id))

    async def initiate_oauth(
        self, tool_id: str, redirect_uri: str, *, scopes: Optional[Sequence[str]] = None
    ) -> Dict[str, Any]:
        """``{authorization_url, state, expires_at, item_id}``: send the user to ``authorization_url``."""
        return await self._run(self._c.initiate_oauth(tool_id, redirect_uri, scopes))

    async def complete_oauth(
        self, tool_id: str, code: str, state: str, *, iss: Optional[str] = None
    ) -> Dict[str, Any]:
        """Exchange the ``code`` your redirect URI received (pass its ``iss`` too when present)."""
        return await self._run(self._c.complete_oauth(tool_id, code, state, iss))

    async def mcp(self, tool_id: str, message: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
        """Send one JSON-RPC message to the tool's MCP server; return its JSON-RPC reply (``None``
        for a notification). The server's session id and protocol version are kept per tool."""
        return await self._run(self._c.mcp(tool_id, message))

    # ------------------------------------------------------------------ internals

    async def _run(self, call: Call) -> Any:
        return call.parse(await self._send(call.request))

    async def _send(self, request: Request) -> Response:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        try:
            resp = await self._http.request(
                request.method, request.url, headers=request.headers, content=request.body
            )
        except httpx.TimeoutException:
            raise LatchkeyTimeoutError(
                0, "request_timeout", "latchkey at %s did not answer within %ss" % (self.base_url, self.timeout)
            ) from None
        except httpx.HTTPError as e:
            raise LatchkeyConnectionError(
                0,
                "connection_error",
                "could not reach latchkey at %s: %s" % (self.base_url, self._c.redact(str(e) or type(e).__name__)),
            ) from None
        headers: Dict[str, str] = {}
        for k, v in resp.headers.multi_items():
            k = k.lower()
            headers[k] = headers[k] + ", " + v if k in headers else v
        return Response(resp.status_code, headers, resp.content)

"""``Latchkey``: the blocking client, on the standard library's ``urllib.request``."""

import http.client
import socket
import time
import urllib.error
import urllib.request
import warnings
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ._core import Call, Core, Data, Params, ProxyResponse, Request, Response
from ._errors import LatchkeyConnectionError, LatchkeyError, LatchkeyTimeoutError


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Makes urllib surface 3xx responses instead of following them."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D401
        return None


class Latchkey:
    """Blocking client for a latchkey server.

    :param base_url: e.g. ``"http://127.0.0.1:8080"`` (a path prefix is kept).
    :param api_key: the ``lk_ak_...`` key, sent as ``X-API-Key``.
    :param user_id: the user this client acts for (sessions, connections, proxy); each of those
        methods also takes ``user_id=`` for another user.
    :param timeout: seconds each request may wait on the network.

    The same methods as :class:`AsyncLatchkey`, without ``await``.
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
        self._opener = urllib.request.build_opener(_NoRedirect())

    def __repr__(self) -> str:
        return "Latchkey(base_url=%r, user_id=%r)" % (self.base_url, self.user_id)

    def __enter__(self) -> "Latchkey":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release (``urllib`` keeps no connections); here for symmetry."""

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

    def create_auth_session(
        self,
        provider: str,
        *legacy: Any,
        user_id: Optional[str] = None,
        scopes: Optional[Sequence[str]] = None,
        return_url: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Start an OAuth connection to ``provider`` for the client's user (or ``user_id``);
        send the user to the returned ``auth_url``.

        With ``return_url`` the browser comes back there with ``session_id`` and a one-time
        ``connect_token``; the connection is usable only after :meth:`confirm_session`, which your
        app calls in its own signed-in session for that user (RFC 6749 §10.12).

        The 0.1 form ``create_auth_session(user_id, provider[, scopes])`` still works and warns.
        """
        if legacy:
            if len(legacy) > 2 or user_id is not None or (len(legacy) == 2 and scopes is not None):
                raise TypeError("create_auth_session(provider, *, user_id=None, scopes=None)")
            warnings.warn(
                "create_auth_session(user_id, provider) is deprecated; use "
                "create_auth_session(provider, user_id=...) or Latchkey(..., user_id=...)",
                DeprecationWarning,
                stacklevel=2,
            )
            user_id, provider = provider, legacy[0]
            if len(legacy) == 2:
                scopes = legacy[1]
        return self._run(self._c.create_auth_session(provider, user_id, scopes, return_url))

    def confirm_session(self, session_id: str, connect_token: str) -> Dict[str, Any]:
        """Confirm a ``return_url`` session's connection with the ``connect_token`` your
        ``return_url`` received; returns the session, now ``complete``."""
        return self._run(self._c.confirm_session(session_id, connect_token))

    def check_session_status(self, session_id: str) -> Dict[str, Any]:
        """The session's status: ``pending``, ``awaiting_confirmation``, ``complete``, ``error``
        (with ``error``) or ``expired``."""
        return self._run(self._c.check_session_status(session_id))

    def wait_for_session(self, session_id: str, *, timeout: float = 300.0, interval: float = 2.0) -> Dict[str, Any]:
        """Poll until the session is no longer ``pending``; return its final status.

        Raises :class:`LatchkeyTimeoutError` (code ``session_timeout``) if it is still pending
        after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            status = self.check_session_status(session_id)
            if status.get("status") != "pending":
                return status
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._c.session_timeout(session_id, timeout)
            time.sleep(max(0.0, min(interval, remaining)))

    def initialize(self) -> List[Dict[str, Any]]:
        """Load the client's user's connections into ``self.connections`` (by provider) and
        return them. Also checks the API key: a bad one raises ``AuthenticationError``."""
        return self._run(self._c.initialize())

    def list_connections(self, user_id: Optional[str] = None) -> List[Dict[str, Any]]:
        return self._run(self._c.list_connections(user_id))

    def delete_connection(self, provider: str, user_id: Optional[str] = None) -> Dict[str, Any]:
        """Revoke the connection at the provider (best effort) and delete it."""
        return self._run(self._c.delete_connection(provider, user_id))

    # ------------------------------------------------------------------ webhooks

    def create_webhook(self, url: str, events: Optional[Sequence[str]] = None) -> Dict[str, Any]:
        """Subscribe ``url`` to ``events`` (default: every event). The answer's ``secret``
        (``whsec_...``) is shown only here: keep it for :func:`verify_webhook`."""
        return self._run(self._c.create_webhook(url, events))

    def list_webhooks(self) -> List[Dict[str, Any]]:
        """The project's webhooks ``{webhook_id, url, events, created_at}``, without secrets."""
        return self._run(self._c.list_webhooks())

    def get_webhook(self, webhook_id: str) -> Dict[str, Any]:
        """The webhook, with ``failures``: its newest deliveries that exhausted their retries."""
        return self._run(self._c.get_webhook(webhook_id))

    def delete_webhook(self, webhook_id: str) -> Dict[str, Any]:
        return self._run(self._c.delete_webhook(webhook_id))

    # --------------------------------------------------------------------- proxy

    def proxy_request(
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
        """Call the provider's API through latchkey.

        Upstream 4xx/5xx are returned, not raised. Errors produced by latchkey itself (not
        connected, unknown provider, upstream timeout, ...) raise :class:`LatchkeyError`.
        """
        return self._run(
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

    def proxy_get(self, provider: str, path: str, **kw: Any) -> ProxyResponse:
        return self.proxy_request("GET", provider, path, **kw)

    def proxy_post(self, provider: str, path: str, **kw: Any) -> ProxyResponse:
        return self.proxy_request("POST", provider, path, **kw)

    def proxy_put(self, provider: str, path: str, **kw: Any) -> ProxyResponse:
        return self.proxy_request("PUT", provider, path, **kw)

    def proxy_patch(self, provider: str, path: str, **kw: Any) -> ProxyResponse:
        return self.proxy_request("PATCH", provider, path, **kw)

    def proxy_delete(self, provider: str, path: str, **kw: Any) -> ProxyResponse:
        return self.proxy_request("DELETE", provider, path, **kw)

    # --------------------------------------------------------------------- tools

    def create_tool(
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
        return self._run(self._c.create_tool(name, server_url, redirect_uris, scopes, client_id, client_secret))

    def get_tool(self, tool_id: str) -> Dict[str, Any]:
        return self._run(self._c.get_tool(tool_id))

    def delete_tool(self, tool_id: str) -> Dict[str, Any]:
        return self._run(self._c.delete_tool(tool_id))

    def initiate_oauth(
        self, tool_id: str, redirect_uri: str, *, scopes: Optional[Sequence[str]] = None
    ) -> Dict[str, Any]:
        """``{authorization_url, state, expires_at, item_id}``: send the user to ``authorization_url``."""
        return self._run(self._c.initiate_oauth(tool_id, redirect_uri, scopes))

    def complete_oauth(self, tool_id: str, code: str, state: str, *, iss: Optional[str] = None) -> Dict[str, Any]:
        """Exchange the ``code`` your redirect URI received (pass its ``iss`` too when present)."""
        return self._run(self._c.complete_oauth(tool_id, code, state, iss))

    def mcp(self, tool_id: str, message: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
        """Send one JSON-RPC message to the tool's MCP server; return its JSON-RPC reply (``None``
        for a notification). The server's session id and protocol version are kept per tool."""
        return self._run(self._c.mcp(tool_id, message))

    # ------------------------------------------------------------------ internals

    def _run(self, call: Call) -> Any:
        return call.parse(self._send(call.request))

    def _send(self, request: Request) -> Response:
        req = urllib.request.Request(request.url, data=request.body, method=request.method)
        for k, v in request.headers.items():
            req.add_header(k, v)
        try:
            try:
                resp = self._opener.open(req, timeout=self.timeout)
            except urllib.error.HTTPError as e:  # non-2xx, including unfollowed 3xx
                resp = e
            try:
                content = resp.read()
                status = resp.status if getattr(resp, "status", None) is not None else resp.code
                headers: Dict[str, str] = {}
                for k, v in resp.headers.items() if resp.headers is not None else []:
                    k = k.lower()
                    headers[k] = headers[k] + ", " + v if k in headers else v
            finally:
                resp.close()
        except LatchkeyError:
            raise
        except (socket.timeout, TimeoutError) as e:
            raise self._timeout() from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, (socket.timeout, TimeoutError)):
                raise self._timeout() from None
            raise LatchkeyConnectionError(
                0, "connection_error", "could not reach latchkey at %s: %s" % (self.base_url, self._c.redact(str(e.reason)))
            ) from None
        except (http.client.HTTPException, ConnectionError, OSError) as e:
            raise LatchkeyConnectionError(
                0,
                "connection_error",
                "the connection to latchkey at %s failed: %s" % (self.base_url, self._c.redact(str(e) or type(e).__name__)),
            ) from None
        return Response(int(status), headers, content)

    def _timeout(self) -> LatchkeyTimeoutError:
        return LatchkeyTimeoutError(
            0, "request_timeout", "latchkey at %s did not answer within %ss" % (self.base_url, self.timeout)
        )

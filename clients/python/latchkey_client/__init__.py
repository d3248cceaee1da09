"""Python client for the latchkey token vault HTTP API.

Standard library only (``urllib.request``). Example::

    from latchkey_client import Latchkey

    lk = Latchkey("http://127.0.0.1:8080", "lk_ak_...", user_id="user-1")
    session = lk.create_auth_session("user-1", "google")
    print("open:", session["auth_url"])
    lk.wait_for_session(session["session_id"])
    print(lk.proxy_get("google", "gmail/v1/users/me/profile").json())
"""

import json as _json
import time
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

__all__ = ["Latchkey", "LatchkeyError", "LatchkeyTimeoutError", "ProxyResponse"]
__version__ = "0.1.0"

# Characters left unescaped in proxy paths (RFC 3986 pchar plus "/").
_PATH_SAFE = "/:@!$&'()*+,;=-._~"

_REDACTED = "[redacted]"


class LatchkeyError(Exception):
    """An error reported by latchkey (or a non-2xx response from it).

    Attributes: ``status`` (HTTP status, int), ``code`` (latchkey's
    snake_case error code, or ``"http_error"``) and ``message``.
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


class LatchkeyTimeoutError(LatchkeyError):
    """Raised by :meth:`Latchkey.wait_for_session` when the session stays pending."""


class ProxyResponse:
    """The upstream provider's response, passed through latchkey unchanged."""

    def __init__(self, status: int, headers: Dict[str, str], content: bytes) -> None:
        self.status = status
        self.headers = headers
        self.content = content

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        return self.content.decode(self._charset() or "utf-8", errors="replace")

    def json(self) -> Any:
        return _json.loads(self.text)

    def _charset(self) -> Optional[str]:
        ctype = self.headers.get("content-type")
        if not ctype:
            return None
        msg = Message()
        msg["content-type"] = ctype
        charset = msg.get_param("charset")
        if isinstance(charset, str):
            try:
                "".encode(charset)
            except LookupError:
                return None
            return charset
        return None

    def __repr__(self) -> str:
        return "<ProxyResponse status=%d bytes=%d>" % (self.status, len(self.content))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Makes urllib surface 3xx responses instead of following them."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D401
        return None


_Params = Union[Mapping[str, Any], Sequence[Tuple[str, Any]], None]


class Latchkey:
    """Client for a latchkey server.

    :param base_url: e.g. ``"http://127.0.0.1:8080"`` (a path prefix is kept).
    :param api_key: the ``lk_ak_...`` key, sent as ``X-API-Key``.
    :param user_id: default user for proxy/connection calls.
    :param timeout: per-request socket timeout in seconds.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        user_id: Optional[str] = None,
        timeout: float = 30.0,
    ) -> None:
        if not base_url:
            raise ValueError("base_url is required")
        if not api_key:
            raise ValueError("api_key is required")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.user_id = user_id
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirect())

    def __repr__(self) -> str:
        return "Latchkey(base_url=%r, user_id=%r)" % (self.base_url, self.user_id)

    # ------------------------------------------------------------------ identity

    def create_auth_session(
        self, user_id: str, provider: str, scopes: Optional[Sequence[str]] = None
    ) -> Dict[str, Any]:
        """Start an OAuth connection; send the user to the returned ``auth_url``."""
        body: Dict[str, Any] = {"user_id": user_id, "provider": provider}
        if scopes is not None:
            body["scopes"] = list(scopes)
        return self._api("POST", "/v1/identity/sessions", body)

    def check_session_status(self, session_id: str) -> Dict[str, Any]:
        return self._api("GET", "/v1/identity/sessions/" + _seg(session_id))

    def wait_for_session(
        self, session_id: str, *, timeout: float = 300.0, interval: float = 2.0
    ) -> Dict[str, Any]:
        """Poll until the session is no longer ``pending``; return its final status.

        Raises :class:`LatchkeyTimeoutError` if it is still pending after
        ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            status = self.check_session_status(session_id)
            if status.get("status") != "pending":
                return status
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LatchkeyTimeoutError(
                    0,
                    "session_timeout",
                    "session %s still pending after %ss" % (session_id, timeout),
                )
            time.sleep(max(0.0, min(interval, remaining)))

    def list_connections(self, user_id: Optional[str] = None) -> List[Dict[str, Any]]:
        uid = self._user(user_id)
        body = self._api("GET", "/v1/identity/users/%s/connections" % _seg(uid))
        return list(body.get("connections") or [])

    def delete_connection(self, provider: str, user_id: Optional[str] = None) -> Dict[str, Any]:
        uid = self._user(user_id)
        return self._api(
            "DELETE",
            "/v1/identity/users/%s/connections/%s" % (_seg(uid), _seg(provider)),
        )

    # --------------------------------------------------------------------- proxy

    def proxy_request(
        self,
        method: str,
        provider: str,
        path: str,
        *,
        user_id: Optional[str] = None,
        params: _Params = None,
        json: Any = None,
        data: Union[bytes, str, Mapping[str, Any], None] = None,
        headers: Optional[Mapping[str, str]] = None,
        api_host: Optional[str] = None,
    ) -> ProxyResponse:
        """Call the provider's API through latchkey.

        Upstream 4xx/5xx are returned, not raised. Errors produced by latchkey
        itself (not connected, unknown provider, upstream timeout, ...) raise
        :class:`LatchkeyError`.
        """
        uid = self._user(user_id)
        if json is not None and data is not None:
            raise ValueError("pass either json or data, not both")
        url = "%s/v1/proxy/%s/%s" % (
            self.base_url,
            _seg(provider),
            urllib.parse.quote(path.lstrip("/"), safe=_PATH_SAFE),
        )
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)

        hdrs: Dict[str, str] = {}
        body: Optional[bytes] = None
        if json is not None:
            body = _json.dumps(json).encode("utf-8")
            hdrs["Content-Type"] = "application/json"
        elif isinstance(data, Mapping):
            body = urllib.parse.urlencode(data, doseq=True).encode("utf-8")
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        elif isinstance(data, str):
            body = data.encode("utf-8")
        elif data is not None:
            body = bytes(data)
        if headers:
            hdrs.update(headers)
        if body is not None and not any(k.lower() == "content-type" for k in hdrs):
            # urllib would otherwise claim application/x-www-form-urlencoded.
            hdrs["Content-Type"] = "application/octet-stream"
        if api_host:
            hdrs["X-Latchkey-Api-Host"] = api_host
        # latchkey percent-decodes X-User-Id, so any user id (non-ASCII, or with "%") survives.
        hdrs["X-User-Id"] = urllib.parse.quote(uid, safe="")

        status, rheaders, content = self._send(method.upper(), url, body, hdrs)
        if _is_latchkey_error(status, rheaders, content):
            raise self._error(status, content)
        return ProxyResponse(status, rheaders, content)

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

    # ------------------------------------------------------------------ internals

    def _user(self, user_id: Optional[str]) -> str:
        uid = user_id if user_id is not None else self.user_id
        if not uid:
            raise ValueError("user_id is required (pass it here or to Latchkey(...))")
        return uid

    def _api(self, method: str, path: str, body: Any = None) -> Dict[str, Any]:
        hdrs: Dict[str, str] = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = _json.dumps(body).encode("utf-8")
            hdrs["Content-Type"] = "application/json"
        status, _headers, content = self._send(method, self.base_url + path, data, hdrs)
        if not 200 <= status < 300:
            raise self._error(status, content)
        if not content.strip():
            return {}
        try:
            return _json.loads(content.decode("utf-8"))
        except ValueError:
            raise LatchkeyError(status, "invalid_response", self._redact(_snippet(content)))

    def _send(
        self, method: str, url: str, body: Optional[bytes], headers: Dict[str, str]
    ) -> Tuple[int, Dict[str, str], bytes]:
        req = urllib.request.Request(url, data=body, method=method)
        for k, v in headers.items():
            req.add_header(k, v)
        req.add_header("X-API-Key", self._api_key)
        req.add_header("User-Agent", "latchkey-client-python/" + __version__)
        try:
            resp = self._opener.open(req, timeout=self.timeout)
        except urllib.error.HTTPError as e:  # non-2xx, including unfollowed 3xx
            resp = e
        try:
            content = resp.read()
            status = resp.status if getattr(resp, "status", None) is not None else resp.code
            rheaders: Dict[str, str] = {}
            for k, v in (resp.headers.items() if resp.headers is not None else []):
                k = k.lower()
                rheaders[k] = rheaders[k] + ", " + v if k in rheaders else v
        finally:
            resp.close()
        return int(status), rheaders, content

    def _error(self, status: int, content: bytes) -> LatchkeyError:
        code, message = "http_error", _snippet(content)
        err = _error_body(content)
        if err is not None:
            code = str(err.get("code") or code)
            message = str(err.get("message") or message)
        if not message:
            message = "HTTP %d" % status
        return LatchkeyError(status, code, self._redact(message))

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, _REDACTED) if self._api_key else text


def _seg(value: str) -> str:
    return urllib.parse.quote(str(value), safe="")


def _snippet(content: bytes, limit: int = 500) -> str:
    text = content.decode("utf-8", errors="replace").strip()
    return text if len(text) <= limit else text[:limit] + "..."


def _error_body(content: bytes) -> Optional[Dict[str, Any]]:
    try:
        body = _json.loads(content.decode("utf-8"))
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"]
    return None


def _is_latchkey_error(status: int, headers: Mapping[str, str], content: bytes) -> bool:
    # latchkey marks its own errors; anything else is the provider's response, passed through
    # even when it happens to look like latchkey's error shape.
    return headers.get("x-latchkey-error", "").strip() == "1"

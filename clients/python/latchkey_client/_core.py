"""What both clients share: each API call as a request to send and a function that reads the
answer. ``Latchkey`` sends with ``urllib``, ``AsyncLatchkey`` with ``httpx``; everything else —
paths, headers, bodies, errors, MCP session handling — is here, once."""

import json as _json
import urllib.parse
from email.message import Message
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from ._errors import (
    ConfigurationError,
    InvalidRequestError,
    InvalidResponseError,
    LatchkeyError,
    LatchkeyTimeoutError,
    McpHttpError,
    error_class,
    tool_code,
)

__version__ = "0.2.0"

# Characters left unescaped in proxy paths (RFC 3986 pchar plus "/").
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_REDACTED = "[redacted]"
_MCP_ACCEPT = "application/json, text/event-stream"

Params = Union[Mapping[str, Any], Sequence[Tuple[str, Any]], None]
Data = Union[bytes, str, Mapping[str, Any], None]


class Request(NamedTuple):
    method: str
    url: str
    headers: Dict[str, str]
    body: Optional[bytes]


class Response(NamedTuple):
    status: int
    headers: Dict[str, str]  # lower-case names
    content: bytes


class Call(NamedTuple):
    """One API call: the request, and what turns the response into the method's result."""

    request: Request
    parse: Callable[[Response], Any]


class ProxyResponse:
    """The upstream provider's response, passed through latchkey unchanged.

    ``resp["field"]`` is ``resp.json()["field"]``, so code written for clients that return the
    parsed body works as it is.
    """

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

    def __getitem__(self, key: Any) -> Any:
        return self.json()[key]

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


class Core:
    """Configuration, request building and response reading for both clients."""

    def __init__(self, base_url: str, api_key: str, user_id: Optional[str], timeout: float) -> None:
        if not isinstance(base_url, str) or not base_url.strip():
            raise ConfigurationError("base_url is required, e.g. 'http://127.0.0.1:8080'")
        if not isinstance(api_key, str) or not api_key.strip():
            raise ConfigurationError("api_key is required (the lk_ak_... key from `latchkey project create`)")
        parsed = urllib.parse.urlsplit(base_url.strip())
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigurationError("base_url must be an http(s) URL, e.g. 'http://127.0.0.1:8080'")
        if timeout is None or not timeout > 0:
            raise ConfigurationError("timeout must be a positive number of seconds")
        self.base_url = base_url.strip().rstrip("/")
        self._api_key = api_key
        self.user_id = user_id
        self.timeout = float(timeout)
        #: The user's connections by provider, loaded by ``initialize()``; ``None`` before.
        self.connections: Optional[Dict[str, Dict[str, Any]]] = None
        # Per tool: the MCP session id and protocol version the server gave.
        self._mcp: Dict[str, Dict[str, str]] = {}

    # ------------------------------------------------------------------ helpers

    def _user(self, user_id: Optional[str]) -> str:
        uid = user_id if user_id is not None else self.user_id
        if not uid:
            raise ConfigurationError("user_id is required (pass it here or to the client's constructor)")
        return uid

    def redact(self, text: str) -> str:
        return text.replace(self._api_key, _REDACTED) if self._api_key else text

    def _headers(self, extra: Dict[str, str]) -> Dict[str, str]:
        h = dict(extra)
        h["X-API-Key"] = self._api_key
        h["User-Agent"] = "latchkey-client-python/" + __version__
        return h

    def _json_request(self, method: str, path: str, body: Any = None) -> Request:
        hdrs = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = _json.dumps(body).encode("utf-8")
            hdrs["Content-Type"] = "application/json"
        return Request(method, self.base_url + path, self._headers(hdrs), data)

    def _read_json(self, resp: Response) -> Any:
        if not resp.content.strip():
            return {}
        try:
            return _json.loads(resp.content.decode("utf-8"))
        except ValueError:
            raise InvalidResponseError(
                resp.status,
                "invalid_response",
                "expected JSON from latchkey, got %s: %s"
                % (resp.headers.get("content-type") or "no content type", self.redact(_snippet(resp.content))),
            ) from None

    def vault_error(self, resp: Response) -> LatchkeyError:
        code, message = "http_error", _snippet(resp.content)
        err = _error_body(resp.content)
        if err is not None:
            code = str(err.get("code") or code)
            message = str(err.get("message") or message)
        if not message:
            message = "HTTP %d" % resp.status
        return error_class(code, resp.status)(resp.status, code, self.redact(message))

    def tool_error(self, resp: Response, forwarding: bool = False) -> LatchkeyError:
        detail: Any = None
        try:
            body = _json.loads(resp.content.decode("utf-8"))
            if isinstance(body, dict):
                detail = body.get("detail")
        except ValueError:
            pass
        if isinstance(detail, list):
            errors = [e for e in detail if isinstance(e, dict)]
            message = "; ".join(
                "%s: %s" % (".".join(str(p) for p in e.get("loc") or []), e.get("msg", "")) for e in errors
            )
            return InvalidRequestError(resp.status, "validation_error", self.redact(message), errors)
        if isinstance(detail, str) and detail:
            code = tool_code(resp.status, detail, forwarding)
            message = detail
        else:
            code = "http_error"
            message = _snippet(resp.content) or "HTTP %d" % resp.status
        return error_class(code, resp.status)(resp.status, code, self.redact(message))

    def _vault_call(self, method: str, path: str, body: Any = None) -> Call:
        def parse(resp: Response) -> Any:
            if not 200 <= resp.status < 300:
                raise self.vault_error(resp)
            return self._read_json(resp)

        return Call(self._json_request(method, path, body), parse)

    def _tool_call(self, method: str, path: str, body: Any = None) -> Call:
        def parse(resp: Response) -> Any:
            if not 200 <= resp.status < 300:
                raise self.tool_error(resp)
            return self._read_json(resp)

        return Call(self._json_request(method, path, body), parse)

    # ----------------------------------------------------------------- identity

    def create_auth_session(
        self,
        provider: str,
        user_id: Optional[str],
        scopes: Optional[Sequence[str]],
        return_url: Optional[str] = None,
    ) -> Call:
        if not provider:
            raise ConfigurationError("provider is required, e.g. 'google'")
        body: Dict[str, Any] = {"user_id": self._user(user_id), "provider": provider}
        if scopes is not None:
            body["scopes"] = list(scopes)
        if return_url is not None:
            body["return_url"] = return_url
        return self._vault_call("POST", "/v1/identity/sessions", body)

    def confirm_session(self, session_id: str, connect_token: str) -> Call:
        if not connect_token:
            raise ConfigurationError("connect_token is required (the return_url received it)")
        return self._vault_call(
            "POST", "/v1/identity/sessions/%s/confirm" % _seg(session_id), {"connect_token": connect_token}
        )

    def check_session_status(self, session_id: str) -> Call:
        return self._vault_call("GET", "/v1/identity/sessions/" + _seg(session_id))

    def session_timeout(self, session_id: str, timeout: float) -> LatchkeyTimeoutError:
        return LatchkeyTimeoutError(0, "session_timeout", "session %s still pending after %ss" % (session_id, timeout))

    def list_connections(self, user_id: Optional[str]) -> Call:
        uid = self._user(user_id)
        call = self._vault_call("GET", "/v1/identity/users/%s/connections" % _seg(uid))

        def parse(resp: Response) -> List[Dict[str, Any]]:
            return list(call.parse(resp).get("connections") or [])

        return Call(call.request, parse)

    def initialize(self) -> Call:
        call = self.list_connections(None)

        def parse(resp: Response) -> List[Dict[str, Any]]:
            conns = call.parse(resp)
            self.connections = {str(c.get("provider")): c for c in conns if isinstance(c, dict)}
            return conns

        return Call(call.request, parse)

    def delete_connection(self, provider: str, user_id: Optional[str]) -> Call:
        uid = self._user(user_id)
        call = self._vault_call(
            "DELETE", "/v1/identity/users/%s/connections/%s" % (_seg(uid), _seg(provider))
        )

        def parse(resp: Response) -> Dict[str, Any]:
            out = call.parse(resp)
            if self.connections is not None and (user_id is None or user_id == self.user_id):
                self.connections.pop(provider, None)
            return out

        return Call(call.request, parse)

    # ----------------------------------------------------------------- webhooks

    def create_webhook(self, url: str, events: Optional[Sequence[str]]) -> Call:
        if not isinstance(url, str) or not url:
            raise ConfigurationError("url is required, e.g. 'https://app.example.com/latchkey-webhooks'")
        body: Dict[str, Any] = {"url": url}
        if events is not None:
            body["events"] = list(events)
        return self._vault_call("POST", "/v1/webhooks", body)

    def list_webhooks(self) -> Call:
        call = self._vault_call("GET", "/v1/webhooks")

        def parse(resp: Response) -> List[Dict[str, Any]]:
            return list(call.parse(resp).get("webhooks") or [])

        return Call(call.request, parse)

    def get_webhook(self, webhook_id: str) -> Call:
        return self._vault_call("GET", "/v1/webhooks/" + _seg(webhook_id))

    def delete_webhook(self, webhook_id: str) -> Call:
        return self._vault_call("DELETE", "/v1/webhooks/" + _seg(webhook_id))

    # -------------------------------------------------------------------- proxy

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
    ) -> Call:
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
            hdrs["Content-Type"] = "application/octet-stream"
        if api_host:
            hdrs["X-Latchkey-Api-Host"] = api_host
        # latchkey percent-decodes X-User-Id, so any user id (non-ASCII, or with "%") survives.
        hdrs["X-User-Id"] = urllib.parse.quote(uid, safe="")

        def parse(resp: Response) -> ProxyResponse:
            # latchkey marks its own errors; anything else is the provider's response, passed
            # through even when it happens to look like latchkey's error shape.
            if resp.headers.get("x-latchkey-error", "").strip() == "1":
                raise self.vault_error(resp)
            return ProxyResponse(resp.status, resp.headers, resp.content)

        return Call(Request(method.upper(), url, self._headers(hdrs), body), parse)

    # -------------------------------------------------------------------- tools

    def create_tool(
        self,
        name: str,
        server_url: str,
        redirect_uris: Optional[Sequence[str]],
        scopes: Optional[Sequence[str]],
        client_id: Optional[str],
        client_secret: Optional[str],
    ) -> Call:
        body: Dict[str, Any] = {"name": name, "server_url": server_url}
        if redirect_uris is not None:
            body["redirect_uris"] = list(redirect_uris)
        if scopes is not None:
            body["scopes"] = list(scopes)
        if client_id is not None:
            body["client_id"] = client_id
        if client_secret is not None:
            body["client_secret"] = client_secret
        return self._tool_call("POST", "/tools", body)

    def get_tool(self, tool_id: str) -> Call:
        return self._tool_call("GET", "/tools/" + _seg(tool_id))

    def delete_tool(self, tool_id: str) -> Call:
        call = self._tool_call("DELETE", "/tools/" + _seg(tool_id))

        def parse(resp: Response) -> Any:
            out = call.parse(resp)
            self._mcp.pop(tool_id, None)
            return out

        return Call(call.request, parse)

    def initiate_oauth(self, tool_id: str, redirect_uri: str, scopes: Optional[Sequence[str]]) -> Call:
        body: Dict[str, Any] = {"redirect_uri": redirect_uri}
        if scopes is not None:
            body["scopes"] = list(scopes)
        return self._tool_call("POST", "/tools/%s/initiate-oauth" % _seg(tool_id), body)

    def complete_oauth(self, tool_id: str, code: str, state: str, iss: Optional[str]) -> Call:
        body: Dict[str, Any] = {"code": code, "state": state}
        if iss is not None:
            body["iss"] = iss
        return self._tool_call("POST", "/tools/%s/complete-oauth" % _seg(tool_id), body)

    def mcp(self, tool_id: str, message: Mapping[str, Any]) -> Call:
        if not isinstance(message, Mapping) or message.get("jsonrpc") != "2.0" or not message.get("method"):
            raise ValueError('message must be a JSON-RPC 2.0 request or notification: {"jsonrpc": "2.0", "method": ...}')
        session = self._mcp.get(tool_id, {})
        hdrs = {"Accept": _MCP_ACCEPT, "Content-Type": "application/json"}
        if "session_id" in session:
            hdrs["Mcp-Session-Id"] = session["session_id"]
        if "protocol_version" in session:
            hdrs["MCP-Protocol-Version"] = session["protocol_version"]
        url = "%s/tools/%s/mcp" % (self.base_url, _seg(tool_id))
        body = _json.dumps(dict(message)).encode("utf-8")

        def parse(resp: Response) -> Optional[Dict[str, Any]]:
            if resp.headers.get("x-latchkey-error", "").strip() == "1":
                raise self.tool_error(resp, forwarding=True)
            if not 200 <= resp.status < 300:
                raise McpHttpError(
                    resp.status,
                    "the MCP server answered HTTP %d%s"
                    % (resp.status, (": " + self.redact(_snippet(resp.content, 200))) if resp.content.strip() else ""),
                    resp.headers.get("www-authenticate"),
                    resp.content,
                )
            if resp.status in (202, 204) or not resp.content.strip():
                return None
            ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower()
            try:
                if ctype == "text/event-stream":
                    reply = _pick_reply(_sse_messages(resp.content.decode("utf-8")), message.get("id"))
                else:
                    reply = _json.loads(resp.content.decode("utf-8"))
            except ValueError:
                raise InvalidResponseError(
                    resp.status,
                    "invalid_response",
                    "the MCP server's answer is not JSON-RPC: %s" % self.redact(_snippet(resp.content, 200)),
                ) from None
            state = self._mcp.setdefault(tool_id, {})
            sid = resp.headers.get("mcp-session-id")
            if sid:
                state["session_id"] = sid
            if message.get("method") == "initialize" and isinstance(reply, dict):
                version = (reply.get("result") or {}).get("protocolVersion")
                if isinstance(version, str):
                    state["protocol_version"] = version
            return reply

        return Call(Request("POST", url, self._headers(hdrs), body), parse)


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


def _sse_messages(text: str) -> List[Any]:
    """The JSON ``data`` of each event in a ``text/event-stream`` body."""
    out: List[Any] = []
    data: List[str] = []
    for line in text.splitlines() + [""]:
        if line == "":
            if data:
                joined = "\n".join(data)
                if joined.strip():
                    out.append(_json.loads(joined))
                data = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            data.append(value)
    return out


def _pick_reply(messages: List[Any], request_id: Any) -> Any:
    """The JSON-RPC response to ``request_id`` among a stream's messages, else the last one."""
    for m in messages:
        if isinstance(m, dict) and "id" in m and m.get("id") == request_id and ("result" in m or "error" in m):
            return m
    return messages[-1] if messages else None

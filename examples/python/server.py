"""An MCP server on the official Python SDK (`mcp` 2.3), protected by latchkey.

- RFC 9728 protected-resource metadata names latchkey as the authorization server and declares the
  scopes this server offers: mcp:tools and mcp:admin.
- Every request to /mcp carries a bearer token, checked by the SDK's bearer middleware with a
  `TokenVerifier` that asks latchkey's introspection endpoint (RFC 7662, HTTP Basic with this
  resource server's id and secret from `latchkey resource-server create`).
- Without a valid token: 401 with WWW-Authenticate naming resource_metadata and scope="mcp:tools".
- `echo` needs mcp:tools; `admin_audit` needs mcp:admin too, and a token without it gets
  403 insufficient_scope with scope="mcp:tools mcp:admin" (step-up: the client asks again).

Configuration (environment):
  LATCHKEY_ISSUER                  latchkey's issuer, e.g. http://127.0.0.1:8080/oauth/2.1
  LATCHKEY_RESOURCE_SERVER_ID      the resource server id (lkrs_...)
  LATCHKEY_RESOURCE_SERVER_SECRET  its secret
  PORT                             default 3001
  HOST                             default 127.0.0.1
  MCP_RESOURCE_URL                 this server's URL as registered, default http://HOST:PORT/mcp
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any
from urllib.parse import urlsplit

import httpx2
import uvicorn
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.routes import build_resource_metadata_url, create_protected_resource_routes
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE
from pydantic import AnyHttpUrl
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        sys.exit(f"{name} is required (see README.md)")
    return value


ISSUER = required("LATCHKEY_ISSUER").rstrip("/")
RS_ID = required("LATCHKEY_RESOURCE_SERVER_ID")
RS_SECRET = required("LATCHKEY_RESOURCE_SERVER_SECRET")
HOST = os.environ.get("HOST", "127.0.0.1")
PORT = int(os.environ.get("PORT", "3001"))
RESOURCE = os.environ.get("MCP_RESOURCE_URL", f"http://{HOST}:{PORT}/mcp")

# The scopes this server declares (and registered with `latchkey resource-server create --scope`).
TOOLS_SCOPE = "mcp:tools"
ADMIN_SCOPE = "mcp:admin"
# Tools that need more than mcp:tools, and what they need.
TOOL_SCOPES = {"admin_audit": [TOOLS_SCOPE, ADMIN_SCOPE]}


class LatchkeyIntrospection(TokenVerifier):
    """RFC 7662: ask latchkey whether the token is active, and for whom, which scopes and which resource."""

    def __init__(self, issuer: str, rs_id: str, rs_secret: str):
        self.issuer = issuer
        self.auth = httpx2.BasicAuth(rs_id, rs_secret)
        self.endpoint: str | None = None
        self.http = httpx2.AsyncClient(timeout=5.0)

    async def introspection_endpoint(self) -> str:
        if self.endpoint is None:
            # RFC 8414 §3.1: the metadata of an issuer with a path is at the path-suffixed well-known URL.
            issuer = urlsplit(self.issuer)
            url = f"{issuer.scheme}://{issuer.netloc}/.well-known/oauth-authorization-server{issuer.path}"
            res = await self.http.get(url)
            res.raise_for_status()
            self.endpoint = res.json()["introspection_endpoint"]
        return self.endpoint

    async def verify_token(self, token: str) -> AccessToken | None:
        endpoint = await self.introspection_endpoint()
        res = await self.http.post(endpoint, data={"token": token}, auth=self.auth)
        # A 401 here means this server's own id or secret is wrong: fail loudly, not as the client's fault.
        res.raise_for_status()
        data = res.json()
        if data.get("active") is not True:
            return None
        aud = data.get("aud")
        resource = aud[0] if isinstance(aud, list) and aud else aud
        return AccessToken(
            token=token,
            client_id=str(data.get("client_id", "")),
            scopes=str(data.get("scope", "")).split(),
            expires_at=data.get("exp"),
            resource=resource if isinstance(resource, str) else None,
            subject=data.get("sub"),
            claims={"iss": data.get("iss"), "username": data.get("username")},
        )


mcp = MCPServer(
    name="latchkey-example-python",
    token_verifier=LatchkeyIntrospection(ISSUER, RS_ID, RS_SECRET),
    auth=AuthSettings(
        issuer_url=AnyHttpUrl(ISSUER),
        resource_server_url=AnyHttpUrl(RESOURCE),
        required_scopes=[TOOLS_SCOPE],
        # latchkey binds every token to the resource it was issued for; check it here too.
        validate_token_resource=True,
    ),
)


def caller() -> dict[str, Any]:
    token = get_access_token()
    if token is None:
        return {}
    return {
        "subject": token.subject,
        "username": (token.claims or {}).get("username"),
        "client_id": token.client_id,
        "scopes": token.scopes,
    }


@mcp.tool(description="Echo the text back, with who asked (needs mcp:tools)")
def echo(text: str) -> str:
    return json.dumps({"echo": text, **caller()})


@mcp.tool(description="An administrative report (needs mcp:admin)")
def admin_audit() -> str:
    # The HTTP layer already refused tokens without mcp:admin; check again where it matters.
    if ADMIN_SCOPE not in caller().get("scopes", []):
        raise ToolError("mcp:admin is required")
    return json.dumps({"admin": True, **caller()})


class ScopeChallenges:
    """What the SDK's bearer middleware leaves to us, as ASGI middleware inside its authentication:

    - a tools/call of a tool in `TOOL_SCOPES` by a token without those scopes gets
      403 insufficient_scope naming them (RFC 6750 §3.1), so the client can step up;
    - every 401/403 challenge from /mcp names the scope it needs (`scope="mcp:tools"`), which the
      SDK's `RequireAuthMiddleware` does not add (MCP clients request what the challenge names).
    """

    def __init__(self, app: ASGIApp, path: str, resource_metadata: str):
        self.app = app
        self.path = path
        self.resource_metadata = resource_metadata

    def challenge(self, error: str, scopes: list[str]) -> bytes:
        return (
            f'Bearer error="{error}", scope="{" ".join(scopes)}", resource_metadata="{self.resource_metadata}"'
        ).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") != self.path:
            await self.app(scope, receive, send)
            return
        needed = [TOOLS_SCOPE]
        if scope["method"] == "POST":
            # Read the JSON-RPC body (the transport reads it again from the replay below).
            received = bytearray()
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                received += message.get("body", b"")
                more = message.get("more_body", False)
                if len(received) > DEFAULT_MAX_REQUEST_BODY_SIZE:
                    await send({"type": "http.response.start", "status": 413, "headers": []})
                    await send({"type": "http.response.body", "body": b""})
                    return
            body = bytes(received)
            needed = self.scopes_for(body)
            user = scope.get("user")
            if isinstance(user, AuthenticatedUser) and not all(s in user.scopes for s in needed):
                payload = json.dumps(
                    {"error": "insufficient_scope", "error_description": "Required scope: " + " ".join(needed)}
                ).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 403,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode()),
                            (b"www-authenticate", self.challenge("insufficient_scope", needed)),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": payload})
                return
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            receive = replay

        async def send_with_scope(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (401, 403):
                headers = list(message.get("headers", []))
                for i, (name, value) in enumerate(headers):
                    if name.lower() == b"www-authenticate" and b"scope=" not in value:
                        headers[i] = (name, value + b', scope="' + " ".join(needed).encode() + b'"')
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_scope)

    @staticmethod
    def scopes_for(body: bytes) -> list[str]:
        try:
            parsed = json.loads(body)
        except ValueError:
            return [TOOLS_SCOPE]
        for msg in parsed if isinstance(parsed, list) else [parsed]:
            if isinstance(msg, dict) and msg.get("method") == "tools/call":
                name = (msg.get("params") or {}).get("name")
                if isinstance(name, str) and name in TOOL_SCOPES:
                    return TOOL_SCOPES[name]
        return [TOOLS_SCOPE]


def build_app() -> ASGIApp:
    # Stateless Streamable HTTP with JSON answers; the SDK adds the bearer middleware, the
    # 401 challenge and RFC 9728 metadata from AuthSettings.
    app = mcp.streamable_http_app(stateless_http=True, json_response=True, host=HOST)
    resource = AnyHttpUrl(RESOURCE)
    # The SDK's metadata lists only `required_scopes`; declare every scope this server offers by
    # putting the same route, with all of them, ahead of it.
    app.router.routes[0:0] = create_protected_resource_routes(
        resource_url=resource,
        authorization_servers=[AnyHttpUrl(ISSUER)],
        scopes_supported=[TOOLS_SCOPE, ADMIN_SCOPE],
        resource_name="latchkey example (Python)",
    )
    # Appended last, so it runs after the SDK's authentication middleware (it reads scope["user"]).
    app.user_middleware.append(
        Middleware(
            ScopeChallenges,
            path=urlsplit(RESOURCE).path.rstrip("/"),
            resource_metadata=str(build_resource_metadata_url(resource)),
        )
    )
    return app


if __name__ == "__main__":
    print(f"MCP server {RESOURCE} (authorization server {ISSUER})", flush=True)
    uvicorn.run(build_app(), host=HOST, port=PORT, log_level="warning")

"""The official MCP Python SDK (`mcp` 2.3) as an app uses it against a real MCP server that trusts
latchkey: `OAuthClientProvider` on the httpx2 client under `streamable_http_client` and
`ClientSession`, so the SDK does discovery (RFC 9728 → RFC 8414), dynamic registration, PKCE, the
token exchange, refresh and step-up by itself. The app's part is the browser: the redirect handler
signs in and approves consent at latchkey (`latchkey serve`'s local sign-in page) with httpx2, and
the callback handler hands back code, state and iss.

Then: tools/call → latchkey's clock and the client's token expiry move past the access token's
lifetime, the SDK refreshes before the next call → the admin tool answers 403 insufficient_scope and
the SDK re-authorizes for the union of scopes → the admin tool answers.

Usage: python client.py <MCP server URL>   (env LATCHKEY_ISSUER, LATCHKEY_TEST_CONTROL)
Prints one JSON line with what happened; exits non-zero on any failure.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import traceback
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import anyio
import httpx2
from mcp import ClientSession
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

SERVER = sys.argv[1]
ISSUER = os.environ["LATCHKEY_ISSUER"]
CONTROL = os.environ.get("LATCHKEY_TEST_CONTROL")
REDIRECT = "http://127.0.0.1:33421/callback"

report: dict[str, Any] = {
    "client": "python-sdk",
    "server": SERVER,
    "requests": [],
    "authorizations": [],
    "tokens": [],
}


class MemoryStorage(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        report["tokens"].append(
            {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token, "scope": tokens.scope}
        )

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class Browser:
    """latchkey's authorize endpoint as a browser sees it: cookies, latchkey's own redirects, the
    local sign-in form and the consent page; stops at the first redirect that leaves latchkey."""

    def __init__(self, email: str) -> None:
        self.email = email
        self.cookies: dict[str, str] = {}
        self.http = httpx2.AsyncClient(follow_redirects=False, timeout=10.0)
        self.prefix = ISSUER.rstrip("/")

    async def request(self, method: str, url: str, form: dict[str, str] | None = None) -> httpx2.Response:
        headers = {}
        if self.cookies:
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if form is not None:
            headers["content-type"] = "application/x-www-form-urlencoded"
        res = await self.http.request(method, url, headers=headers, content=urlencode(form) if form else None)
        for value in res.headers.get_list("set-cookie"):
            name, _, rest = value.partition("=")
            self.cookies[name.strip()] = rest.split(";")[0].strip()
        return res

    async def authorize(self, url: str) -> tuple[str, list[dict[str, Any]]]:
        pages: list[dict[str, Any]] = []
        res = await self.request("GET", url)
        for _ in range(8):
            if res.status_code in (302, 303):
                location = urljoin(str(res.request.url), res.headers["location"])
                if not location.startswith(self.prefix + "/"):
                    return location, pages
                res = await self.request("GET", location)
                continue
            html = res.text
            if res.status_code != 200:
                raise RuntimeError(f"{res.request.url}: {res.status_code} {html[:500]}")
            request_id = hidden(html, "request")
            if 'type="email"' in html:
                pages.append({"page": "sign-in"})
                res = await self.request("POST", f"{self.prefix}/callback", {"request": request_id, "email": self.email})
            else:
                pages.append({"page": "consent", "scopes": re.findall(r"<code>([^<]+)</code>", html)})
                res = await self.request(
                    "POST",
                    f"{self.prefix}/consent",
                    {"request": request_id, "csrf": hidden(html, "csrf"), "decision": "approve"},
                )
        raise RuntimeError("the authorization did not come back to the client")


def hidden(html: str, name: str) -> str:
    m = re.search(f'name="{name}" value="([^"]*)"', html)
    if not m:
        raise RuntimeError(f"no {name} field in {html[:500]}")
    return m.group(1)


async def record(response: httpx2.Response) -> None:
    """What the SDK sends to the authorization server, and what the MCP server challenges with."""
    request = response.request
    url = str(request.url)
    if response.status_code in (401, 403) and "www-authenticate" in response.headers:
        report.setdefault("challenges", []).append(
            {"status": response.status_code, "www_authenticate": response.headers["www-authenticate"]}
        )
    if not url.startswith(ISSUER):
        return
    path = url[len(ISSUER) :].split("?")[0]
    if path not in ("/register", "/token"):
        return
    await response.aread()
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if path == "/register":
        body = json.loads(request.content or b"{}")
        report["requests"].append(
            {
                "endpoint": "register",
                "status": response.status_code,
                "requested_scope": body.get("scope"),
                "grant_types": body.get("grant_types"),
                "registered_scope": answer.get("scope"),
                "error": answer.get("error"),
                "error_description": answer.get("error_description"),
            }
        )
    else:
        form = {k: v[0] for k, v in parse_qs((request.content or b"").decode()).items()}
        report["requests"].append(
            {
                "endpoint": "token",
                "status": response.status_code,
                "grant_type": form.get("grant_type"),
                "requested_scope": form.get("scope"),
                "resource": form.get("resource"),
                "granted_scope": answer.get("scope"),
                "error": answer.get("error"),
            }
        )


async def advance_clock() -> None:
    if not CONTROL:
        raise RuntimeError("LATCHKEY_TEST_CONTROL is not set")
    async with httpx2.AsyncClient() as http:
        (await http.post(f"{CONTROL}/advance")).raise_for_status()


async def call_tool(session: ClientSession, name: str, arguments: dict[str, Any]) -> Any:
    result = await session.call_tool(name, arguments)
    text = result.content[0].text if result.content else ""  # type: ignore[union-attr]
    if result.is_error:
        raise RuntimeError(f"{name}: {text}")
    return json.loads(text)


async def main() -> None:
    browser = Browser("py-sdk@example.com")
    redirected: dict[str, str] = {}

    async def redirect_handler(url: str) -> None:
        q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        location, pages = await browser.authorize(url)
        report["authorizations"].append(
            {"requested_scope": q.get("scope"), "resource": q.get("resource"), "prompt": q.get("prompt"), "pages": pages}
        )
        redirected["location"] = location

    async def callback_handler() -> AuthorizationCodeResult:
        q = {k: v[0] for k, v in parse_qs(urlsplit(redirected.pop("location")).query).items()}
        if "error" in q:
            raise RuntimeError(f"authorization refused: {q}")
        return AuthorizationCodeResult(code=q["code"], state=q.get("state"), iss=q.get("iss"))

    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=SERVER,
        client_metadata=OAuthClientMetadata(
            client_name="latchkey interop: Python SDK",
            redirect_uris=[REDIRECT],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    async with httpx2.AsyncClient(auth=provider, timeout=30.0, event_hooks={"response": [record]}) as http:
        async with streamable_http_client(SERVER, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                report["client_id"] = storage.client.client_id if storage.client else None
                report["authorization_server"] = provider.context.auth_server_url
                report["echo"] = await call_tool(session, "echo", {"text": "hello from the Python SDK"})

                # The access token's lifetime passes for both latchkey (its clock) and the client (the
                # SDK's expiry time): the SDK refreshes before sending the next call.
                await advance_clock()
                provider.context.token_expiry_time = time.time() - 1
                report["echo_after_expiry"] = await call_tool(session, "echo", {"text": "after expiry"})

                # Step-up: 403 insufficient_scope → the SDK re-authorizes for more scope and retries.
                report["admin"] = await call_tool(session, "admin_audit", {})
    report["ok"] = True


try:
    anyio.run(main)
except BaseException as e:  # noqa: BLE001 - report everything, including exception groups
    report["ok"] = False
    report["failure"] = "".join(traceback.format_exception(e))
    print(json.dumps(report))
    sys.exit(1)
print(json.dumps(report))

#!/usr/bin/env python3
"""latchkey as an MCP OAuth client, for the official conformance suite's `auth/*` client scenarios.

The suite runs `tool_client.py <server URL>`; this adapter is what an app writes against latchkey's
tool API on a running `latchkey serve` (LATCHKEY_URL, LATCHKEY_API_KEY), and nothing more:

1. register the scenario's server as a tool once (POST /tools), with the pre-registered credentials
   from MCP_CONFORMANCE_CONTEXT where the scenario has them, and a redirect URI of its own (every
   scenario runs in one latchkey project, as an app's tools do: docs/api.md asks for one redirect URI
   per tool, since a tool whose server never sends `iss` cannot share one with a tool whose server
   does, RFC 9700 §4.4);
2. call the server through forwarding (POST /tools/{id}/mcp); the first call goes without a token;
3. on a 401 (the server's, or latchkey's saying the authorization is gone) or a 403
   insufficient_scope: initiate-oauth without scopes (latchkey picks them: the server's latest
   challenge joined with what the tool holds; and follows a server that moved to another
   authorization server), open the authorization URL the way a browser would (the scenario's
   server approves at once; read the redirect's Location), complete-oauth with code, state and iss,
   and retry: at most 3 authorizations;
4. list and call the server's tools.

Standard library only. Exits non-zero when the flow cannot complete (the suite expects that in the
scenarios where refusing is right).
"""
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid

REDIRECT_URI = f"http://localhost:3000/callback/{uuid.uuid4().hex}"
BASE = os.environ.get("LATCHKEY_URL", "http://127.0.0.1:8080").rstrip("/")
API_KEY = os.environ.get("LATCHKEY_API_KEY", "")
VERSION = os.environ.get("MCP_CONFORMANCE_PROTOCOL_VERSION", "2025-11-25")
CONTEXT = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
STATELESS = VERSION >= "2026-07-28"


def log(*args):
    print("[latchkey-client]", *args, file=sys.stderr, flush=True)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def http(method, url, body=None, headers=None):
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    try:
        res = OPENER.open(req, timeout=20)
    except urllib.error.HTTPError as e:
        res = e
    return res.status, {k.lower(): v for k, v in res.headers.items()}, res.read().decode("utf-8", "replace")


def latchkey(method, path, body=None):
    return http(method, BASE + path, body, {"X-API-Key": API_KEY})


MAX_AUTHORIZATIONS = 3


class Tool:
    def __init__(self, server_url):
        self.server_url = server_url
        self.tool_id = None
        self.authorizations = 0

    def register(self):
        body = {"name": "conformance", "server_url": self.server_url, "redirect_uris": [REDIRECT_URI]}
        if CONTEXT.get("client_id"):
            body["client_id"] = CONTEXT["client_id"]
            if CONTEXT.get("client_secret"):
                body["client_secret"] = CONTEXT["client_secret"]
        status, _, text = latchkey("POST", "/tools", body)
        if status != 201:
            raise SystemExit(f"latchkey refused to register the server: {status} {text}")
        doc = json.loads(text)
        self.tool_id = doc["item_id"]
        log("registered", self.tool_id, "via", doc["tool"]["client_registration"])

    def authorize(self):
        if self.authorizations >= MAX_AUTHORIZATIONS:
            raise SystemExit(f"giving up after {MAX_AUTHORIZATIONS} authorizations")
        self.authorizations += 1
        status, _, text = latchkey("POST", f"/tools/{self.tool_id}/initiate-oauth", {"redirect_uri": REDIRECT_URI})
        if status != 200:
            raise SystemExit(f"initiate-oauth: {status} {text}")
        init = json.loads(text)
        # The browser: the scenario's authorization server approves at once with a redirect.
        status, headers, _ = http("GET", init["authorization_url"])
        location = headers.get("location")
        if status not in (301, 302, 303, 307) or not location:
            raise SystemExit(f"the authorization server answered {status} without a redirect")
        q = urllib.parse.parse_qs(urllib.parse.urlparse(location).query)
        if "error" in q:
            raise SystemExit(f"authorization refused: {q['error'][0]}")
        if q.get("state", [None])[0] != init["state"]:
            raise SystemExit("the redirect's state does not match")
        body = {"code": q["code"][0], "state": init["state"]}
        if "iss" in q:
            body["iss"] = q["iss"][0]
        status, _, text = latchkey("POST", f"/tools/{self.tool_id}/complete-oauth", body)
        if status != 200:
            raise SystemExit(f"complete-oauth refused: {status} {text}")
        log("authorized")

    def rpc(self, method, params=None, notification=False):
        msg = {"jsonrpc": "2.0", "method": method}
        if not notification:
            msg["id"] = self.next_id()
        params = dict(params or {})
        headers = {"Accept": "application/json, text/event-stream"}
        if STATELESS:
            meta = dict(params.get("_meta") or {})
            meta["io.modelcontextprotocol/protocolVersion"] = VERSION
            meta["io.modelcontextprotocol/clientCapabilities"] = {}
            params["_meta"] = meta
            headers["MCP-Protocol-Version"] = VERSION
        elif method != "initialize":
            headers["MCP-Protocol-Version"] = VERSION
        if params:
            msg["params"] = params
        while True:
            status, resp_headers, text = http(
                "POST", f"{BASE}/tools/{self.tool_id}/mcp", msg, dict(headers, **{"X-API-Key": API_KEY})
            )
            insufficient = status == 403 and "insufficient_scope" in resp_headers.get("www-authenticate", "")
            if status == 401 or insufficient:
                log(method, "->", status, "; authorizing")
                self.authorize()
                continue
            if notification:
                return None
            if status != 200:
                raise SystemExit(f"{method}: HTTP {status} {text[:300]}")
            return parse_rpc(text, resp_headers.get("content-type", ""))

    _id = 0

    def next_id(self):
        Tool._id += 1
        return Tool._id


def parse_rpc(text, content_type):
    if content_type.startswith("text/event-stream"):
        for line in text.splitlines():
            if line.startswith("data:"):
                msg = json.loads(line[5:].strip())
                if "result" in msg or "error" in msg:
                    return msg
        raise SystemExit("no JSON-RPC response in the event stream")
    return json.loads(text)


def main():
    server_url = sys.argv[-1]
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    log("scenario", scenario, "version", VERSION, "server", server_url)
    tool = Tool(server_url)
    tool.register()
    if STATELESS:
        tool.rpc("server/discover")
    else:
        tool.rpc("initialize", {"protocolVersion": VERSION, "capabilities": {},
                                "clientInfo": {"name": "latchkey-conformance", "version": "1"}})
        tool.rpc("notifications/initialized", notification=True)
    listed = tool.rpc("tools/list")
    names = [t["name"] for t in listed.get("result", {}).get("tools", [])]
    log("tools:", names)
    for name in names[:1]:
        result = tool.rpc("tools/call", {"name": name, "arguments": {}})
        log("called", name, "->", json.dumps(result.get("result", result))[:200])


if __name__ == "__main__":
    main()

"""The same tests for ``Latchkey`` and ``AsyncLatchkey`` against an in-process fake latchkey: the
reference's call forms, ``initialize()``, the tools API and ``mcp()``, typed errors, bad input
(no base URL or key, non-JSON, 5xx, timeouts, nothing listening) and the API key kept out of
reprs, errors and logs.

``AsyncLatchkey`` needs httpx: without it these tests are skipped for it, unless
``LATCHKEY_REQUIRE_HTTPX`` is set (as ``scripts/test`` does), when that is an error.
"""

import asyncio
import io
import json
import logging
import os
import socket
import sys
import time
import unittest
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import latchkey_client as lk  # noqa: E402
from latchkey_client import Latchkey  # noqa: E402
from tests.test_client import ALL_EVENTS, API_KEY, SECRET, FakeLatchkey, _latchkey_error  # noqa: E402

try:
    import httpx  # noqa: F401

    HAVE_HTTPX = True
except ImportError:
    HAVE_HTTPX = False
    if os.environ.get("LATCHKEY_REQUIRE_HTTPX"):
        raise

TOOL = "tl_0123456789abcdef"


def _tool_error(status, detail):
    return status, {"x-latchkey-error": "1"}, {"detail": detail}


class Fake(FakeLatchkey):
    """The unit tests' fake latchkey, with the tools API, MCP forwarding and bad answers."""

    def __init__(self):
        super().__init__()
        self.mcp_posts = []

    def handle_error(self, request, client_address):
        # The timeout test's client hangs up before the slow answer is written.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)

    def respond(self, req):
        path, method = req["path"], req["method"]
        if path == "/slow":
            time.sleep(1.0)
            return 200, {}, {}
        if req["headers"].get("x-api-key") != API_KEY:
            if path.startswith("/tools"):
                return _tool_error(401, "Invalid project key")
            return super().respond(req)
        if path == "/v1/identity/sessions/html":
            return 200, {"Content-Type": "text/html"}, b"<html>not json</html>"
        if path == "/v1/identity/sessions/busy":
            return _latchkey_error(503, "temporarily_unavailable", "The store is busy")
        if path == "/v1/identity/sessions/gateway":
            return 502, {"Content-Type": "text/html"}, b"<html>Bad Gateway</html>"
        if path.startswith("/v1/proxy/revoked/"):
            return _latchkey_error(401, "reauthorization_required", "connect again")
        if path == "/tools" and method == "POST":
            b = json.loads(req["body"])
            if "server_url" not in b:
                return 422, {"x-latchkey-error": "1"}, {
                    "detail": [{"loc": ["body", "server_url"], "msg": "field required", "type": "value_error.missing"}]
                }
            return 201, {}, {"is_success": True, "item_id": TOOL, "detail": "Tool registered", "error": {}, "tool": b}
        if path == "/tools/" + TOOL and method == "GET":
            return 200, {}, {"tool_id": TOOL, "connection": {"status": "connected"}}
        if path == "/tools/" + TOOL and method == "DELETE":
            return 200, {}, {"is_success": True, "item_id": TOOL, "detail": "Tool deleted", "error": {}}
        if path.startswith("/tools/tl_missing"):
            return _tool_error(404, "Tool not found")
        if path == "/tools/%s/initiate-oauth" % TOOL:
            return 200, {}, {"authorization_url": "http://as.invalid/authorize", "state": "st", "expires_at": "x", "item_id": TOOL}
        if path == "/tools/%s/complete-oauth" % TOOL:
            b = json.loads(req["body"])
            if b["state"] != "st":
                return 422, {"x-latchkey-error": "1"}, {
                    "detail": [
                        {
                            "loc": ["body", "state"],
                            "msg": "State parameter does not match. Possible CSRF attack.",
                            "type": "value_error.csrf",
                        }
                    ]
                }
            return 200, {}, {"is_success": True, "item_id": TOOL, "detail": "OAuth flow completed successfully", "error": {}}
        if path.startswith("/tools/") and path.endswith("/mcp"):
            return self.mcp_answer(path.split("/")[2], req)
        return super().respond(req)

    def mcp_answer(self, tool, req):
        msg = json.loads(req["body"])
        self.mcp_posts.append(req)
        if tool == "tl_unconnected":
            return 401, {"WWW-Authenticate": 'Bearer resource_metadata="http://mcp.invalid/prm"'}, b""
        if tool == "tl_revoked":
            return _tool_error(401, "The tool's authorization can no longer be refreshed; run initiate-oauth again")
        if tool == "tl_garbage":
            return 200, {"Content-Type": "application/json"}, b"<html>"
        method = msg.get("method")
        if method == "initialize":
            reply = {"jsonrpc": "2.0", "id": msg["id"], "result": {"protocolVersion": "2025-06-18", "capabilities": {}}}
            return 200, {"Mcp-Session-Id": "sess-9"}, reply
        if method == "notifications/initialized":
            return 202, {}, b""
        if method == "tools/list":
            # An event stream: a notification first, then the reply.
            body = (
                'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress"}\n\n'
                "event: message\r\ndata: " + json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": {"tools": []}}) + "\r\n\r\n"
            )
            return 200, {"Content-Type": "text/event-stream"}, body.encode()
        return 200, {}, {"jsonrpc": "2.0", "id": msg.get("id"), "error": {"code": -32601, "message": "no"}}


class _Both:
    """Mixin: ``self.call(name, *args)`` runs a client method and returns its result, whichever
    client ``make`` builds."""

    def make(self, base_url, api_key, **kw):
        raise NotImplementedError

    def call(self, name, *args, **kw):
        raise NotImplementedError

    def setUp(self):
        self.server = Fake()
        import threading

        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()
        self.client = self.make(self.server.url, API_KEY, user_id="bound-user", timeout=5)

    def tearDown(self):
        self.close(self.client)
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def close(self, client):
        pass

    @property
    def last(self):
        return self.server.requests[-1]

    # -------------------------------------------------------------- the reference's calls

    def test_create_auth_session_takes_the_provider_and_the_bound_user(self):
        s = self.call("create_auth_session", "google")
        self.assertEqual((s["session_id"], s["status"]), ("sess_1", "pending"))
        self.assertEqual(json.loads(self.last["body"]), {"user_id": "bound-user", "provider": "google"})
        self.call("create_auth_session", "google", user_id="other", scopes=["a"])
        self.assertEqual(json.loads(self.last["body"]), {"user_id": "other", "provider": "google", "scopes": ["a"]})

    def test_the_reference_polling_loop(self):
        session = self.call("create_auth_session", "google")
        while True:
            status = self.call("check_session_status", session["session_id"])
            if status["status"] == "complete":
                break
        self.assertEqual(self.server.session_polls, 3)
        conns = self.call("initialize")
        self.assertEqual([c["provider"] for c in conns], ["google"])
        self.assertEqual(list(self.client.connections), ["google"])
        self.assertEqual(self.last["path"], "/v1/identity/users/bound-user/connections")
        profile = self.call("proxy_get", "google", "gmail/v1/users/me/profile")
        self.assertEqual(profile["method"], "GET")  # the body's field, as the reference's dict
        self.assertEqual(self.last["headers"]["x-user-id"], "bound-user")

    def test_connections_before_initialize_is_none_and_delete_forgets_the_provider(self):
        self.assertIsNone(self.client.connections)
        self.call("initialize")
        self.call("delete_connection", "google")
        self.assertEqual(self.client.connections, {})

    def test_wait_for_session(self):
        st = self.call("wait_for_session", "sess_1", timeout=5, interval=0.01)
        self.assertEqual(st["status"], "complete")
        self.server.pending_polls = 10**6
        with self.assertRaises(lk.LatchkeyTimeoutError) as cm:
            self.call("wait_for_session", "sess_1", timeout=0.1, interval=0.02)
        self.assertEqual(cm.exception.code, "session_timeout")

    def test_user_id_required_before_any_request(self):
        client = self.make(self.server.url, API_KEY)
        try:
            for name, args in (
                ("create_auth_session", ("google",)),
                ("initialize", ()),
                ("list_connections", ()),
                ("delete_connection", ("google",)),
                ("proxy_get", ("google", "x")),
            ):
                with self.assertRaises(lk.ConfigurationError, msg=name) as cm:
                    self.call_on(client, name, *args)
                self.assertIsInstance(cm.exception, ValueError)
                self.assertIn("user_id", str(cm.exception))
            self.assertEqual(self.server.requests, [])
        finally:
            self.close(client)

    # -------------------------------------------------------------- bad input

    def test_constructor_needs_a_base_url_and_a_key(self):
        for args in (("", API_KEY), (None, API_KEY), (self.server.url, ""), (self.server.url, None), ("127.0.0.1:8080", API_KEY)):
            with self.assertRaises(lk.ConfigurationError, msg=repr(args)) as cm:
                self.make(*args)
            self.assertEqual(cm.exception.code, "configuration_error")
            self.assertNotIn(API_KEY, str(cm.exception))

    def test_non_json_answer_is_invalid_response(self):
        with self.assertRaises(lk.InvalidResponseError) as cm:
            self.call("check_session_status", "html")
        e = cm.exception
        self.assertEqual((e.status, e.code), (200, "invalid_response"))
        self.assertIn("text/html", e.message)

    def test_5xx_is_a_server_error(self):
        with self.assertRaises(lk.ServerError) as cm:
            self.call("check_session_status", "busy")
        self.assertEqual((cm.exception.status, cm.exception.code), (503, "temporarily_unavailable"))
        with self.assertRaises(lk.ServerError) as cm:
            self.call("check_session_status", "gateway")
        self.assertEqual((cm.exception.status, cm.exception.code), (502, "http_error"))
        self.assertIn("Bad Gateway", cm.exception.message)

    def test_timeout(self):
        client = self.make(self.server.url, API_KEY, user_id="u", timeout=0.2)
        client_c = getattr(client, "_c")
        try:
            started = time.monotonic()
            with self.assertRaises(lk.LatchkeyTimeoutError) as cm:
                # A path on latchkey's host that answers after 1 s.
                self.call_on(client, "_run", _raw_call(client_c, "/slow"))
            self.assertLess(time.monotonic() - started, 0.9)
            self.assertEqual((cm.exception.status, cm.exception.code), (0, "request_timeout"))
        finally:
            self.close(client)

    def test_nothing_listening_is_a_connection_error(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        client = self.make("http://127.0.0.1:%d" % port, API_KEY, user_id="u")
        try:
            with self.assertRaises(lk.LatchkeyConnectionError) as cm:
                self.call_on(client, "initialize")
            self.assertEqual(cm.exception.code, "connection_error")
        finally:
            self.close(client)

    # -------------------------------------------------------------- typed errors

    def test_errors_are_typed_by_latchkey_code(self):
        cases = (
            (lambda: self.call("proxy_get", "github", "user"), lk.NotConnectedError, 404, "not_connected"),
            (lambda: self.call("create_auth_session", "nope"), lk.NotFoundError, 404, "unknown_provider"),
            (lambda: self.call("proxy_get", "revoked", "x"), lk.ReauthorizationRequiredError, 401, "reauthorization_required"),
            (lambda: self.call("delete_connection", "github"), lk.NotConnectedError, 404, "not_connected"),
        )
        for fn, cls, status, code in cases:
            with self.assertRaises(cls, msg=code) as cm:
                fn()
            self.assertIsInstance(cm.exception, lk.LatchkeyError)
            self.assertEqual((cm.exception.status, cm.exception.code), (status, code))

    def test_bad_key_is_an_authentication_error_without_the_key(self):
        bad = self.make(self.server.url, API_KEY + "x", user_id="u")
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        root = logging.getLogger()
        old = root.level
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
        try:
            with self.assertRaises(lk.AuthenticationError) as cm:
                self.call_on(bad, "initialize")
            with self.assertRaises(lk.AuthenticationError) as cm2:
                self.call_on(bad, "get_tool", TOOL)
        finally:
            root.removeHandler(handler)
            root.setLevel(old)
            self.close(bad)
        e = cm.exception
        self.assertEqual((e.status, e.code), (401, "invalid_api_key"))
        self.assertEqual((cm2.exception.status, cm2.exception.code, cm2.exception.message), (401, "invalid_api_key", "Invalid project key"))
        for text in (str(e), repr(e), e.message, str(e.args), repr(bad), repr(self.client), stream.getvalue()):
            self.assertNotIn(API_KEY, text)
        self.assertIn("[redacted]", e.message)

    # -------------------------------------------------------------- webhooks API

    def test_webhooks_api(self):
        out = self.call("create_webhook", "https://app.invalid/hooks", ["connection.refresh_failed", "session.failed"])
        self.assertEqual((out["webhook_id"], out["secret"]), ("lkwh_1", SECRET))
        r = self.last
        self.assertEqual((r["method"], r["path"]), ("POST", "/v1/webhooks"))
        self.assertEqual(r["headers"]["x-api-key"], API_KEY)
        self.assertEqual(r["headers"]["content-type"], "application/json")
        self.assertEqual(
            json.loads(r["body"]),
            {"url": "https://app.invalid/hooks", "events": ["connection.refresh_failed", "session.failed"]},
        )
        self.assertEqual(self.call("create_webhook", "https://app.invalid/all")["events"], ALL_EVENTS)
        self.assertEqual(json.loads(self.last["body"]), {"url": "https://app.invalid/all"})  # absent: every event
        hooks = self.call("list_webhooks")
        self.assertEqual([h["webhook_id"] for h in hooks], ["lkwh_1"])
        self.assertEqual((self.last["method"], self.last["path"], self.last["body"]), ("GET", "/v1/webhooks", b""))
        self.assertEqual(self.call("get_webhook", "lkwh_1")["failures"][0]["event_id"], "evt_1")
        self.assertEqual((self.last["method"], self.last["path"]), ("GET", "/v1/webhooks/lkwh_1"))
        self.assertEqual(self.call("delete_webhook", "lkwh_1"), {"deleted": True, "webhook_id": "lkwh_1"})
        self.assertEqual((self.last["method"], self.last["path"]), ("DELETE", "/v1/webhooks/lkwh_1"))
        with self.assertRaises(lk.NotFoundError) as cm:
            self.call("get_webhook", "lkwh_x/../y")
        self.assertEqual(self.last["path"], "/v1/webhooks/lkwh_x%2F..%2Fy")
        self.assertEqual((cm.exception.status, cm.exception.code), (404, "not_found"))
        with self.assertRaises(lk.ConfigurationError):
            self.call("create_webhook", "")

    # -------------------------------------------------------------- tools API

    def test_tools_api(self):
        out = self.call("create_tool", "My server", "https://mcp.invalid/mcp", redirect_uris=["http://127.0.0.1:5173/cb"])
        self.assertEqual(out["item_id"], TOOL)
        body = json.loads(self.last["body"])
        self.assertEqual(body, {"name": "My server", "server_url": "https://mcp.invalid/mcp", "redirect_uris": ["http://127.0.0.1:5173/cb"]})
        self.assertNotIn("project_key", body)  # the key goes in X-API-Key only
        self.assertEqual(self.last["headers"]["x-api-key"], API_KEY)
        self.assertEqual(self.call("get_tool", TOOL)["connection"]["status"], "connected")
        init = self.call("initiate_oauth", TOOL, "http://127.0.0.1:5173/cb", scopes=["a"])
        self.assertEqual(json.loads(self.last["body"]), {"redirect_uri": "http://127.0.0.1:5173/cb", "scopes": ["a"]})
        done = self.call("complete_oauth", TOOL, "code-1", init["state"], iss="http://as.invalid")
        self.assertTrue(done["is_success"])
        self.assertEqual(json.loads(self.last["body"]), {"code": "code-1", "state": "st", "iss": "http://as.invalid"})
        self.assertEqual(self.call("delete_tool", TOOL)["detail"], "Tool deleted")
        self.assertEqual(self.last["method"], "DELETE")

    def test_tool_errors(self):
        with self.assertRaises(lk.NotFoundError) as cm:
            self.call("get_tool", "tl_missing")
        self.assertEqual((cm.exception.code, cm.exception.message), ("not_found", "Tool not found"))
        with self.assertRaises(lk.InvalidRequestError) as cm:
            self.call("complete_oauth", TOOL, "c", "wrong")
        e = cm.exception
        self.assertEqual((e.status, e.code), (422, "validation_error"))
        self.assertEqual(e.errors[0]["type"], "value_error.csrf")
        self.assertIn("body.state: State parameter does not match", e.message)

    def test_mcp_json_sse_notifications_and_session(self):
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18"}}
        reply = self.call("mcp", TOOL, init)
        self.assertEqual(reply["result"]["protocolVersion"], "2025-06-18")
        first = self.server.mcp_posts[-1]["headers"]
        self.assertEqual(first["accept"], "application/json, text/event-stream")
        self.assertNotIn("mcp-session-id", first)
        self.assertIsNone(self.call("mcp", TOOL, {"jsonrpc": "2.0", "method": "notifications/initialized"}))
        reply = self.call("mcp", TOOL, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        self.assertEqual(reply, {"jsonrpc": "2.0", "id": 2, "result": {"tools": []}})
        later = self.server.mcp_posts[-1]["headers"]
        self.assertEqual(later["mcp-session-id"], "sess-9")
        self.assertEqual(later["mcp-protocol-version"], "2025-06-18")
        # A JSON-RPC error is the server's answer, returned as it is.
        reply = self.call("mcp", TOOL, {"jsonrpc": "2.0", "id": 3, "method": "nope"})
        self.assertEqual(reply["error"]["code"], -32601)
        with self.assertRaises(ValueError):
            self.call("mcp", TOOL, {"method": "tools/list"})

    def test_mcp_errors(self):
        msg = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        with self.assertRaises(lk.McpHttpError) as cm:
            self.call("mcp", "tl_unconnected", msg)
        e = cm.exception
        self.assertEqual((e.status, e.code), (401, "mcp_http_error"))
        self.assertIn("resource_metadata", e.www_authenticate)
        with self.assertRaises(lk.ReauthorizationRequiredError) as cm:
            self.call("mcp", "tl_revoked", msg)
        self.assertEqual((cm.exception.status, cm.exception.code), (401, "reauthorization_required"))
        with self.assertRaises(lk.InvalidResponseError):
            self.call("mcp", "tl_garbage", msg)


def _raw_call(core, path):
    """A GET of ``path`` on the client's base URL, read as latchkey JSON."""
    return core._vault_call("GET", path)


class SyncClientTests(_Both, unittest.TestCase):
    def make(self, *args, **kw):
        return Latchkey(*args, **kw)

    def call(self, name, *args, **kw):
        return self.call_on(self.client, name, *args, **kw)

    def call_on(self, client, name, *args, **kw):
        return getattr(client, name)(*args, **kw)

    def test_the_01_positional_form_still_works_with_a_warning(self):
        with self.assertWarns(DeprecationWarning) as w:
            self.client.create_auth_session("legacy-user", "google", ["s"])
        self.assertIn("test_both.py", w.filename)  # points at the caller
        self.assertEqual(json.loads(self.last["body"]), {"user_id": "legacy-user", "provider": "google", "scopes": ["s"]})
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            self.client.create_auth_session("google")  # the new form does not warn
        with self.assertRaises(TypeError):
            self.client.create_auth_session("u", "google", user_id="v")


@unittest.skipUnless(HAVE_HTTPX, "httpx is not installed (pip install httpx): AsyncLatchkey not tested")
class AsyncClientTests(_Both, unittest.TestCase):
    def setUp(self):
        self.loop = asyncio.new_event_loop()
        super().setUp()

    def tearDown(self):
        super().tearDown()
        self.loop.close()

    def make(self, *args, **kw):
        return lk.AsyncLatchkey(*args, **kw)

    def close(self, client):
        self.loop.run_until_complete(client.aclose())

    def call(self, name, *args, **kw):
        return self.call_on(self.client, name, *args, **kw)

    def call_on(self, client, name, *args, **kw):
        return self.loop.run_until_complete(getattr(client, name)(*args, **kw))

    def test_async_with_closes_and_positional_user_is_refused(self):
        async def go():
            async with lk.AsyncLatchkey(self.server.url, API_KEY, user_id="u") as c:
                await c.initialize()
                self.assertIsNotNone(c._http)
                with self.assertRaises(TypeError):
                    await c.create_auth_session("u", "google")
            self.assertIsNone(c._http)

        self.loop.run_until_complete(go())


if __name__ == "__main__":
    unittest.main()

"""Unit tests for latchkey_client against an in-process fake latchkey.

Run from the repository root without installing anything:

    python3 -m unittest discover -s clients/python/tests -t clients/python
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import unittest
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from latchkey_client import (  # noqa: E402
    ConfigurationError,
    Latchkey,
    LatchkeyError,
    LatchkeyTimeoutError,
    ProxyResponse,
    WebhookVerificationError,
    verify_webhook,
)

API_KEY = "lk_ak_supersecret_0123456789"
WEIRD_USER = "ann smith/dev#1"
# A webhook secret and the Standard Webhooks specification's test vector for it.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_BODY = b'{"test": 2432232314}'
SPEC_HEADERS = {
    "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
    "webhook-timestamp": "1614265330",
    "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
}
ALL_EVENTS = [
    "connection.created",
    "connection.refresh_failed",
    "connection.recovered",
    "connection.deleted",
    "session.failed",
    "tool.connected",
    "tool.reauthorization_required",
]
WEBHOOK = {"webhook_id": "lkwh_1", "url": "https://app.invalid/hooks", "events": ALL_EVENTS, "created_at": "x"}


class _Handler(BaseHTTPRequestHandler):
    """Records every request and answers from the server's ``routes`` table."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output quiet
        pass

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        record = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
        }
        self.server.requests.append(record)
        status, headers, payload = self.server.respond(record)
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload).encode()
            headers = dict({"Content-Type": "application/json"}, **headers)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


def _latchkey_error(status, code, message):
    return status, {"x-latchkey-error": "1"}, {"error": {"code": code, "message": message}}


class FakeLatchkey(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests = []
        self.session_polls = 0
        self.pending_polls = 2

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.server_address[1]

    def respond(self, req):
        path, method = req["path"], req["method"]
        if req["headers"].get("x-api-key") != API_KEY:
            return _latchkey_error(401, "invalid_api_key", "bad key " + str(req["headers"].get("x-api-key")))
        if method == "POST" and path == "/v1/identity/sessions":
            b = json.loads(req["body"])
            if b["provider"] == "nope":
                return _latchkey_error(404, "unknown_provider", "unknown provider 'nope'")
            return 201, {}, {
                "session_id": "sess_1",
                "auth_url": "http://provider.invalid/authorize?x=1",
                "expires_at": "2026-11-23T12:05:00Z",
                "status": "pending",
                "provider": b["provider"],
                "user_id": b["user_id"],
            }
        if method == "GET" and path == "/v1/identity/sessions/sess_1":
            self.session_polls += 1
            status = "pending" if self.session_polls <= self.pending_polls else "complete"
            return 200, {}, {"session_id": "sess_1", "status": status, "provider": "google", "user_id": "u"}
        if method == "GET" and path.startswith("/v1/identity/users/") and path.endswith("/connections"):
            return 200, {}, {"user_id": "u", "connections": [{"provider": "google", "status": "active", "scopes": []}]}
        if method == "DELETE" and path.startswith("/v1/identity/users/"):
            if path.endswith("/github"):
                return _latchkey_error(404, "not_connected", "no github connection")
            return 200, {}, {"deleted": True, "provider": "google", "revoked_upstream": False}
        if path == "/v1/webhooks" and method == "POST":
            b = json.loads(req["body"])
            return 201, {}, dict(
                WEBHOOK, url=b["url"], events=b.get("events") or ALL_EVENTS, secret=SECRET, created_at="2026-12-01T23:00:00Z"
            )
        if path == "/v1/webhooks" and method == "GET":
            return 200, {}, {"webhooks": [WEBHOOK]}
        if path == "/v1/webhooks/lkwh_1" and method == "GET":
            failure = {"event_id": "evt_1", "type": "session.failed", "attempts": 8, "error": "HTTP 500", "failed_at": "x"}
            return 200, {}, dict(WEBHOOK, failures=[failure])
        if path == "/v1/webhooks/lkwh_1" and method == "DELETE":
            return 200, {}, {"deleted": True, "webhook_id": "lkwh_1"}
        if path == "/v1/identity/sessions/redirect" or path.startswith("/v1/proxy/google/redirect"):
            return 302, {"Location": self.url + "/target"}, b""
        if path == "/target":
            return 200, {}, {"reached": True}
        if path == "/v1/identity/sessions/plain500":
            return 500, {"Content-Type": "text/plain"}, b"boom"
        if path.startswith("/v1/proxy/google/missing"):
            # Upstream 404 in latchkey-like shape but without the marker.
            return 404, {}, {"error": {"code": "not_found", "message": "upstream says no"}}
        if path.startswith("/v1/proxy/github/"):
            return _latchkey_error(404, "not_connected", "user has no github connection")
        if path.startswith("/v1/proxy/slow/"):
            return 504, {}, {"error": {"code": "upstream_timeout", "message": "slow"}}
        if path.startswith("/v1/proxy/"):
            return 200, {"Content-Type": "application/json; charset=utf-8", "X-Upstream": "yes"}, {
                "echo_path": path,
                "method": method,
            }
        return 404, {}, {"error": {"code": "not_found", "message": "no route " + path}}


class ClientTests(unittest.TestCase):
    def setUp(self):
        self.server = FakeLatchkey()
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()
        self.lk = Latchkey(self.server.url + "/", API_KEY, user_id="default-user", timeout=5)

    def tearDown(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    @property
    def last(self):
        return self.server.requests[-1]

    # -------------------------------------------------------------- identity

    def test_create_auth_session_sends_json_and_key(self):
        # The 0.1 positional form (user_id, provider): still works, with a DeprecationWarning.
        with self.assertWarns(DeprecationWarning):
            s = self.lk.create_auth_session(WEIRD_USER, "google", scopes=["a", "b"])
        self.assertEqual(s["status"], "pending")
        self.assertEqual(s["user_id"], WEIRD_USER)
        r = self.last
        self.assertEqual(r["method"], "POST")
        self.assertEqual(r["path"], "/v1/identity/sessions")
        self.assertEqual(r["headers"]["x-api-key"], API_KEY)
        self.assertEqual(r["headers"]["content-type"], "application/json")
        self.assertEqual(
            json.loads(r["body"]), {"user_id": WEIRD_USER, "provider": "google", "scopes": ["a", "b"]}
        )

    def test_create_auth_session_omits_scopes_when_none(self):
        with self.assertWarns(DeprecationWarning):
            self.lk.create_auth_session("u", "google")
        self.assertEqual(json.loads(self.last["body"]), {"user_id": "u", "provider": "google"})

    def test_wait_for_session_polls_until_not_pending(self):
        st = self.lk.wait_for_session("sess_1", timeout=5, interval=0.01)
        self.assertEqual(st["status"], "complete")
        self.assertEqual(self.server.session_polls, 3)
        self.assertEqual(self.last["path"], "/v1/identity/sessions/sess_1")

    def test_wait_for_session_times_out(self):
        self.server.pending_polls = 10**6
        with self.assertRaises(LatchkeyTimeoutError) as cm:
            self.lk.wait_for_session("sess_1", timeout=0.2, interval=0.05)
        self.assertIsInstance(cm.exception, LatchkeyError)
        self.assertEqual(cm.exception.code, "session_timeout")

    def test_list_connections_encodes_user_id(self):
        conns = self.lk.list_connections(WEIRD_USER)
        self.assertEqual(conns[0]["provider"], "google")
        self.assertEqual(self.last["method"], "GET")
        self.assertEqual(self.last["path"], "/v1/identity/users/ann%20smith%2Fdev%231/connections")

    def test_list_connections_uses_default_user(self):
        self.lk.list_connections()
        self.assertEqual(self.last["path"], "/v1/identity/users/default-user/connections")

    def test_delete_connection(self):
        out = self.lk.delete_connection("goo gle", user_id=WEIRD_USER)
        self.assertTrue(out["deleted"])
        self.assertEqual(self.last["method"], "DELETE")
        self.assertEqual(
            self.last["path"], "/v1/identity/users/ann%20smith%2Fdev%231/connections/goo%20gle"
        )

    def test_error_raises_with_code_and_message(self):
        with self.assertRaises(LatchkeyError) as cm:
            self.lk.delete_connection("github")
        e = cm.exception
        self.assertEqual((e.status, e.code, e.message), (404, "not_connected", "no github connection"))
        with self.assertRaises(LatchkeyError) as cm, self.assertWarns(DeprecationWarning):
            self.lk.create_auth_session("u", "nope")
        self.assertEqual((cm.exception.status, cm.exception.code), (404, "unknown_provider"))

    def test_error_fallback_for_non_json_body(self):
        with self.assertRaises(LatchkeyError) as cm:
            self.lk.check_session_status("plain500")
        e = cm.exception
        self.assertEqual((e.status, e.code, e.message), (500, "http_error", "boom"))

    def test_api_key_never_in_exception_or_repr(self):
        # The fake server echoes the key it received in its error message.
        bad = Latchkey(self.server.url, API_KEY + "x")
        with self.assertRaises(LatchkeyError) as cm:
            bad.list_connections("u")
        e = cm.exception
        self.assertEqual((e.status, e.code), (401, "invalid_api_key"))
        for text in (str(e), repr(e), e.message, repr(bad), repr(self.lk), str(e.args)):
            self.assertNotIn(API_KEY, text)
        self.assertIn("[redacted]", e.message)

    def test_user_id_required(self):
        lk = Latchkey(self.server.url, API_KEY)
        with self.assertRaises(ValueError):
            lk.list_connections()
        with self.assertRaises(ValueError):
            lk.proxy_get("google", "x")
        with self.assertRaises(ValueError):
            lk.delete_connection("google")
        self.assertEqual(self.server.requests, [])

    def test_no_redirect_following_api(self):
        with self.assertRaises(LatchkeyError) as cm:
            self.lk.check_session_status("redirect")
        self.assertEqual(cm.exception.status, 302)
        self.assertNotIn("/target", [r["path"] for r in self.server.requests])

    # ----------------------------------------------------------------- proxy

    def test_proxy_get_headers_path_params(self):
        resp = self.lk.proxy_get(
            "google",
            "/gmail/v1/users/me@x.com/messages:batch",
            user_id=WEIRD_USER,
            params={"q": "a b&c", "labelIds": ["X", "Y"]},
            headers={"X-Extra": "1"},
            api_host="www.googleapis.com",
        )
        self.assertIsInstance(resp, ProxyResponse)
        self.assertTrue(resp.ok)
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.headers["x-upstream"], "yes")
        self.assertIn("content-type", resp.headers)
        r = self.last
        self.assertEqual(r["method"], "GET")
        self.assertEqual(
            r["path"],
            "/v1/proxy/google/gmail/v1/users/me@x.com/messages:batch?q=a+b%26c&labelIds=X&labelIds=Y",
        )
        self.assertEqual(resp.json()["echo_path"], r["path"])
        self.assertIn("echo_path", resp.text)
        self.assertEqual(r["headers"]["x-api-key"], API_KEY)
        # Percent-encoded: latchkey decodes X-User-Id, so any user id survives a header.
        self.assertEqual(urllib.parse.unquote(r["headers"]["x-user-id"]), WEIRD_USER)
        self.assertEqual(r["headers"]["x-user-id"], "ann%20smith%2Fdev%231")
        self.assertEqual(r["headers"]["x-extra"], "1")
        self.assertEqual(r["headers"]["x-latchkey-api-host"], "www.googleapis.com")
        self.assertEqual(r["body"], b"")

    def test_proxy_path_quoting(self):
        self.lk.proxy_get("goo gle", "a b/c%d/é?x#y")
        self.assertEqual(self.last["path"], "/v1/proxy/goo%20gle/a%20b/c%25d/%C3%A9%3Fx%23y")
        self.assertEqual(self.last["headers"]["x-user-id"], "default-user")

    def test_proxy_post_json(self):
        resp = self.lk.proxy_post("google", "api/items", json={"name": "x", "n": [1, 2]})
        self.assertEqual(resp.json()["method"], "POST")
        r = self.last
        self.assertEqual(r["method"], "POST")
        self.assertEqual(r["headers"]["content-type"], "application/json")
        self.assertEqual(json.loads(r["body"]), {"name": "x", "n": [1, 2]})

    def test_proxy_other_methods_and_raw_data(self):
        for fn, method in (
            (self.lk.proxy_put, "PUT"),
            (self.lk.proxy_patch, "PATCH"),
            (self.lk.proxy_delete, "DELETE"),
        ):
            resp = fn("google", "thing/1", data=b"\x00raw", headers={"Content-Type": "text/csv"})
            self.assertEqual(resp.json()["method"], method)
            self.assertEqual(self.last["method"], method)
            self.assertEqual(self.last["body"], b"\x00raw")
            self.assertEqual(self.last["headers"]["content-type"], "text/csv")
        self.lk.proxy_post("google", "thing", data="hello")
        self.assertEqual(self.last["headers"]["content-type"], "application/octet-stream")
        with self.assertRaises(ValueError):
            self.lk.proxy_post("google", "thing", data=b"x", json={})

    def test_proxy_passes_through_upstream_404(self):
        resp = self.lk.proxy_get("google", "missing/thing")
        self.assertEqual(resp.status, 404)
        self.assertFalse(resp.ok)
        self.assertEqual(resp.json()["error"]["message"], "upstream says no")

    def test_proxy_raises_on_latchkey_error_marker(self):
        with self.assertRaises(LatchkeyError) as cm:
            self.lk.proxy_get("github", "user")
        e = cm.exception
        self.assertEqual((e.status, e.code), (404, "not_connected"))
        self.assertEqual(e.message, "user has no github connection")
        self.assertNotIn(API_KEY, str(e))

    def test_upstream_bodies_shaped_like_latchkey_errors_pass_through_without_the_marker(self):
        resp = self.lk.proxy_get("slow", "x")
        self.assertEqual(resp.status, 504)
        self.assertEqual(resp.json()["error"]["code"], "upstream_timeout")

    def test_proxy_does_not_follow_redirects(self):
        resp = self.lk.proxy_get("google", "redirect/here")
        self.assertEqual(resp.status, 302)
        self.assertEqual(resp.headers["location"], self.server.url + "/target")
        self.assertNotIn("/target", [r["path"] for r in self.server.requests])



def _sign(secret, msg_id, stamp, body):
    """A Standard Webhooks v1 signature, computed here independently of the client."""
    key = base64.b64decode(secret[len("whsec_") :])
    mac = hmac.new(key, msg_id.encode() + b"." + stamp.encode() + b"." + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class VerifyWebhookTests(unittest.TestCase):
    STAMP = 1_800_000_000

    def delivery(self, body=None, secret=SECRET, stamp=STAMP):
        body = body if body is not None else json.dumps(
            {
                "type": "connection.refresh_failed",
                "id": "evt_1",
                "timestamp": "2027-01-15T08:00:00Z",
                "data": {"user_id": "u", "provider": "google"},
            }
        ).encode()
        headers = {
            "Webhook-Id": "evt_1",
            "Webhook-Timestamp": str(stamp),
            "Webhook-Signature": _sign(secret, "evt_1", str(stamp), body),
        }
        return headers, body

    def refused(self, code, *args, **kw):
        with self.assertRaises(WebhookVerificationError) as cm:
            verify_webhook(*args, **kw)
        e = cm.exception
        self.assertIsInstance(e, LatchkeyError)
        self.assertEqual((e.status, e.code), (0, code))
        self.assertNotIn(SECRET[6:], str(e))
        return e

    def test_the_specification_test_vector(self):
        event = verify_webhook(SECRET, SPEC_HEADERS, SPEC_BODY, now=1614265330)
        self.assertEqual(event, {"test": 2432232314})
        # A str body, and headers as (bytes, bytes) pairs in another case (an ASGI scope's).
        pairs = [(k.upper().encode(), v.encode()) for k, v in SPEC_HEADERS.items()]
        self.assertEqual(verify_webhook(SECRET, pairs, SPEC_BODY.decode(), now=1614265330 + 299), {"test": 2432232314})

    def test_a_signed_event_is_returned(self):
        headers, body = self.delivery()
        event = verify_webhook(SECRET, headers, body, now=self.STAMP)
        self.assertEqual((event["type"], event["data"]["provider"]), ("connection.refresh_failed", "google"))
        # Any matching v1 entry is enough (a list, e.g. during a secret rotation).
        other, _ = self.delivery(secret="whsec_" + base64.b64encode(b"k" * 32).decode(), body=body)
        good = headers["Webhook-Signature"]
        headers["Webhook-Signature"] = "v1a,xyz %s %s" % (other["Webhook-Signature"], good)
        self.assertEqual(verify_webhook(SECRET, headers, body, now=self.STAMP), event)
        # A repeated header joined with ", " (as WSGI servers pass it), as the TypeScript client takes it.
        headers["Webhook-Signature"] = "%s, %s" % (other["Webhook-Signature"], good)
        self.assertEqual(verify_webhook(SECRET, headers, body, now=self.STAMP), event)
        # With the current time by default.
        headers, body = self.delivery(stamp=int(time.time()))
        self.assertEqual(verify_webhook(SECRET, headers, body)["id"], "evt_1")

    def test_a_tampered_body_is_refused(self):
        headers, body = self.delivery()
        self.refused("invalid_signature", SECRET, headers, body.replace(b"google", b"github"), now=self.STAMP)
        self.refused("invalid_signature", SECRET, headers, body + b" ", now=self.STAMP)

    def test_a_wrong_secret_is_refused(self):
        headers, body = self.delivery(secret="whsec_" + base64.b64encode(b"x" * 32).decode())
        self.refused("invalid_signature", SECRET, headers, body, now=self.STAMP)

    def test_signatures_of_another_version_or_id_are_refused(self):
        headers, body = self.delivery()
        good = headers["Webhook-Signature"]
        for sig in ("v2," + good[3:], good[3:], "v1," + good[4:], "v1,"):
            headers["Webhook-Signature"] = sig
            self.refused("invalid_signature", SECRET, headers, body, now=self.STAMP)
        headers["Webhook-Signature"], headers["Webhook-Id"] = good, "evt_2"
        self.refused("invalid_signature", SECRET, headers, body, now=self.STAMP)

    def test_an_old_or_future_timestamp_is_refused(self):
        headers, body = self.delivery()
        self.assertTrue(verify_webhook(SECRET, headers, body, now=self.STAMP + 300))
        self.assertTrue(verify_webhook(SECRET, headers, body, now=self.STAMP - 300))
        self.refused("timestamp_out_of_tolerance", SECRET, headers, body, now=self.STAMP + 301)
        self.refused("timestamp_out_of_tolerance", SECRET, headers, body, now=self.STAMP - 301)
        self.refused("timestamp_out_of_tolerance", SECRET, headers, body, tolerance=10, now=self.STAMP + 11)
        self.refused("timestamp_out_of_tolerance", SECRET, headers, body)  # 2027 is not now
        headers, body = self.delivery(stamp="1800000000.5")
        self.refused("invalid_timestamp", SECRET, headers, body, now=self.STAMP)

    def test_a_missing_header_is_refused(self):
        for name in ("Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"):
            headers, body = self.delivery()
            del headers[name]
            e = self.refused("missing_header", SECRET, headers, body, now=self.STAMP)
            self.assertIn(name.lower(), e.message)

    def test_a_signed_body_that_is_not_an_object_is_refused(self):
        headers, body = self.delivery(body=b"[1, 2]")
        self.refused("invalid_body", SECRET, headers, body, now=self.STAMP)

    def test_a_malformed_secret_is_a_configuration_error(self):
        headers, body = self.delivery()
        for secret in ("", "whsec_", "whsec_not base64!", None):
            with self.assertRaises(ConfigurationError, msg=repr(secret)):
                verify_webhook(secret, headers, body, now=self.STAMP)
        # The bare base64 (without "whsec_") is the same key.
        self.assertTrue(verify_webhook(SECRET[6:], headers, body, now=self.STAMP))


if __name__ == "__main__":
    unittest.main()

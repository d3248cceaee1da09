#!/usr/bin/env python3
"""End-to-end flow against a real `latchkey serve` and an auto-approving fake provider, with
either client (the same flow: the blocking client's calls are wrapped to be awaited).

Environment:
  LATCHKEY_URL          base URL of latchkey (required)
  LATCHKEY_API_KEY      lk_ak_... key (required)
  LATCHKEY_CLIENT       "sync" (Latchkey, default) or "async" (AsyncLatchkey)
  LATCHKEY_PROVIDER     provider name (default "google")
  LATCHKEY_USER_ID      user id (default "py-user-1")
  LATCHKEY_PROXY_PATH   path to GET through the proxy (default "api/me")
  LATCHKEY_TEST_CONTROL optional: the test's control server; when set, a second user connects,
                        the provider forgets every token, and the proxy must raise
                        ReauthorizationRequiredError

Prints "python client flow: OK" and exits 0 on success; exits 1 with a
message on stderr on any failure.
"""

import asyncio
import http.server
import json
import os
import sys
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import latchkey_client as lk  # noqa: E402
from latchkey_client import LatchkeyError  # noqa: E402


class FlowFailure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise FlowFailure(what)


def find_token_keys(value, path="$"):
    """Return paths of any dict key containing "token" (case-insensitive)."""
    found = []
    if isinstance(value, dict):
        for k, v in value.items():
            if "token" in str(k).lower():
                found.append("%s.%s" % (path, k))
            found.extend(find_token_keys(v, "%s.%s" % (path, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found.extend(find_token_keys(v, "%s[%d]" % (path, i)))
    return found


def step(msg):
    print("-- " + msg, flush=True)


class Awaitable:
    """The blocking client with awaitable methods, so one flow runs both clients."""

    def __init__(self, client):
        self._client = client

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        async def call(*args, **kw):
            return attr(*args, **kw)

        return call


def make_client(base_url, api_key, user_id):
    if os.environ.get("LATCHKEY_CLIENT", "sync") == "async":
        return lk.AsyncLatchkey(base_url, api_key, user_id=user_id, timeout=10.0)
    return Awaitable(lk.Latchkey(base_url, api_key, user_id=user_id, timeout=10.0))


def open_in_browser(url):
    browser = urllib.request.build_opener()  # follows redirects, like a browser
    with browser.open(url, timeout=10) as resp:
        page = resp.read().decode("utf-8", errors="replace")
        check(resp.status == 200, "callback page returned HTTP %s" % resp.status)
    check("Connected" in page, "callback page does not say 'Connected': %r" % page[:300])


class Receiver:
    """A webhook receiver on 127.0.0.1 that answers 204 and keeps every delivery (headers, body)."""

    def __init__(self):
        deliveries = self.deliveries = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                deliveries.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/latchkey-webhooks" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    async def wait_for(self, kind, user_id, timeout=10.0):
        """The first delivery of ``kind`` about ``user_id`` (other runs share the project)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for headers, body in list(self.deliveries):
                event = json.loads(body)
                if event.get("type") == kind and event.get("data", {}).get("user_id") == user_id:
                    return headers, body
            await asyncio.sleep(0.05)
        raise FlowFailure("no %s delivery about %s arrived" % (kind, user_id))

    def close(self):
        self.server.shutdown()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def follow_until(url, prefix):
    """Follow redirects like a browser, stopping at the first URL starting with ``prefix``."""
    opener = urllib.request.build_opener(_NoRedirect)
    for _ in range(5):
        if url.startswith(prefix):
            return url
        try:
            opener.open(url, timeout=10).close()
        except urllib.error.HTTPError as e:
            check(e.code == 303, "%s answered HTTP %d" % (url, e.code))
            url = urllib.parse.urljoin(url, e.headers["location"])
            continue
        raise FlowFailure("%s did not redirect" % url)
    check(url.startswith(prefix), "never reached %s" % prefix)
    return url


async def run():
    base_url = os.environ.get("LATCHKEY_URL")
    api_key = os.environ.get("LATCHKEY_API_KEY")
    check(base_url, "LATCHKEY_URL is not set")
    check(api_key, "LATCHKEY_API_KEY is not set")
    provider = os.environ.get("LATCHKEY_PROVIDER") or "google"
    user_id = os.environ.get("LATCHKEY_USER_ID") or "py-user-1"
    proxy_path = os.environ.get("LATCHKEY_PROXY_PATH") or "api/me"
    control = os.environ.get("LATCHKEY_TEST_CONTROL")

    lkc = make_client(base_url, api_key, user_id)

    step("create_webhook (a receiver on loopback, as an app would run one)")
    receiver = Receiver()
    hook = await lkc.create_webhook(receiver.url, ["connection.created", "connection.deleted"])
    check(hook.get("secret", "").startswith("whsec_"), "create_webhook returned %r" % {k: v for k, v in hook.items() if k != "secret"})
    check(sorted(hook.get("events", [])) == ["connection.created", "connection.deleted"], "events: %r" % hook.get("events"))
    listed = [h for h in await lkc.list_webhooks() if h.get("webhook_id") == hook["webhook_id"]]
    check(len(listed) == 1 and "secret" not in listed[0], "list_webhooks: %r" % listed)
    shown = await lkc.get_webhook(hook["webhook_id"])
    check(shown.get("url") == receiver.url and shown.get("failures") == [], "get_webhook: %r" % shown)

    step("initialize (no connections yet)")
    check(await lkc.initialize() == [], "a new user has connections")
    check(lkc.connections == {}, "connections after initialize: %r" % lkc.connections)

    step("create_auth_session(%r)" % provider)
    session = await lkc.create_auth_session(provider)
    check(session.get("status") == "pending", "new session status is %r, want 'pending'" % session.get("status"))
    check(session.get("user_id") == user_id, "session is for %r, want %r" % (session.get("user_id"), user_id))
    check(session.get("session_id"), "session has no session_id: %r" % session)
    check(session.get("auth_url"), "session has no auth_url: %r" % session)

    step("open auth_url (following redirects to the callback)")
    open_in_browser(session["auth_url"])

    step("wait_for_session")
    final = await lkc.wait_for_session(session["session_id"], timeout=10, interval=0.1)
    check(final.get("status") == "complete", "session ended as %r: %r" % (final.get("status"), final))

    step("initialize")
    await lkc.initialize()
    check(list(lkc.connections) == [provider], "connections after initialize: %r" % lkc.connections)

    step("the connection.created delivery verifies with verify_webhook")
    headers, body = await receiver.wait_for("connection.created", user_id)
    event = lk.verify_webhook(hook["secret"], headers, body)
    check(event["data"]["provider"] == provider, "delivered event: %r" % event)
    check(not find_token_keys(event), "the event names a token: %r" % event)
    try:
        lk.verify_webhook(hook["secret"], headers, body.replace(provider.encode(), b"other"))
    except lk.WebhookVerificationError:
        pass
    else:
        raise FlowFailure("a tampered delivery verified")

    step("proxy_get(%r, %r)" % (provider, proxy_path))
    resp = await lkc.proxy_get(provider, proxy_path)
    check(resp.status == 200, "proxy returned HTTP %d: %s" % (resp.status, resp.text[:300]))
    print(json.dumps(resp.json(), sort_keys=True), flush=True)

    step("list_connections")
    conns = await lkc.list_connections()
    mine = [c for c in conns if c.get("provider") == provider]
    check(len(mine) == 1, "want exactly one %r connection, got %r" % (provider, conns))
    check(mine[0].get("status") == "active", "connection status is %r, want 'active'" % mine[0].get("status"))
    leaked = find_token_keys(conns)
    check(not leaked, "connection listing exposes token-like keys: %s" % ", ".join(leaked))

    step("delete_connection(%r)" % provider)
    deleted = await lkc.delete_connection(provider)
    check(deleted.get("deleted") is True, "delete_connection returned %r" % deleted)

    step("the connection.deleted delivery, then delete_webhook")
    headers, body = await receiver.wait_for("connection.deleted", user_id)
    check(lk.verify_webhook(hook["secret"], headers, body)["type"] == "connection.deleted", "deleted event")
    await lkc.delete_webhook(hook["webhook_id"])
    check(all(h.get("webhook_id") != hook["webhook_id"] for h in await lkc.list_webhooks()), "webhook still listed")
    receiver.close()

    step("list_connections after delete")
    conns = await lkc.list_connections()
    check(conns == [], "connections after delete: %r" % conns)

    step("proxy_get after delete must raise NotConnectedError")
    try:
        resp = await lkc.proxy_get(provider, proxy_path)
    except lk.NotConnectedError as e:
        check(e.code == "not_connected", "proxy after delete raised %s, want code not_connected" % e)
    else:
        raise FlowFailure("proxy after delete did not raise; got HTTP %d: %s" % (resp.status, resp.text[:300]))

    step("an unknown provider raises NotFoundError")
    try:
        await lkc.create_auth_session("no-such-provider")
    except lk.NotFoundError as e:
        check(e.code == "unknown_provider", "unknown provider raised %s" % e)
    else:
        raise FlowFailure("an unknown provider did not raise")

    step("a wrong API key raises AuthenticationError, without the key")
    wrong = make_client(base_url, api_key + "x", user_id)
    try:
        await wrong.initialize()
    except lk.AuthenticationError as e:
        check(e.code == "invalid_api_key", "wrong key raised %s" % e)
        check(api_key not in str(e) + repr(e), "the key is in the error")
    else:
        raise FlowFailure("a wrong API key did not raise")

    if control:
        step("a refused refresh raises ReauthorizationRequiredError")
        other = make_client(base_url, api_key, user_id + "-b")
        s = await other.create_auth_session(provider)
        open_in_browser(s["auth_url"])
        check((await other.wait_for_session(s["session_id"], timeout=10, interval=0.1))["status"] == "complete", "second user")
        urllib.request.urlopen(urllib.request.Request(control + "/provider/forget-tokens", method="POST"), timeout=10).close()
        try:
            resp = await other.proxy_get(provider, proxy_path)
        except lk.ReauthorizationRequiredError as e:
            check((e.status, e.code) == (401, "reauthorization_required"), "raised %r" % e)
        else:
            raise FlowFailure("a refused refresh did not raise; got HTTP %d" % resp.status)
        conns = await other.list_connections()
        check(conns[0]["status"] == "reauthorization_required", "connection after refused refresh: %r" % conns)

    step("a return_url session is usable only after confirm_session (RFC 6749 §10.12)")
    return_url = "http://127.0.0.1:7777/connected"
    confirming = make_client(base_url, api_key, user_id + "-confirm")
    s = await confirming.create_auth_session(provider, return_url=return_url)
    check(s.get("return_url") == return_url, "session: %r" % s)
    back = urllib.parse.urlparse(follow_until(s["auth_url"], return_url))
    q = dict(urllib.parse.parse_qsl(back.query))
    check(q.get("session_id") == s["session_id"], "back with %r" % q)
    check(q.get("connect_token", "").startswith("lk_ct_"), "back with %r" % q)
    st = await confirming.check_session_status(s["session_id"])
    check(st["status"] == "awaiting_confirmation", "status before confirm: %r" % st)
    check(await confirming.list_connections() == [], "a connection before confirm")
    done = await confirming.confirm_session(s["session_id"], q["connect_token"])
    check(done["status"] == "complete", "confirm returned %r" % done)
    check(len(await confirming.list_connections()) == 1, "no connection after confirm")
    try:
        await confirming.confirm_session(s["session_id"], q["connect_token"])
    except lk.LatchkeyError as e:
        check(e.code == "not_awaiting_confirmation", "a second confirm raised %s" % e)
    else:
        raise FlowFailure("a second confirm did not raise")
    await confirming.delete_connection(provider)
    if hasattr(confirming, "aclose"):
        await confirming.aclose()

    if hasattr(lkc, "aclose"):
        await lkc.aclose()
        await wrong.aclose()
        if control:
            await other.aclose()


def main():
    try:
        asyncio.run(run())
    except FlowFailure as e:
        print("python client flow: FAILED: %s" % e, file=sys.stderr)
        return 1
    except LatchkeyError as e:
        traceback.print_exc()
        print("python client flow: FAILED: unexpected %s" % e, file=sys.stderr)
        return 1
    except Exception as e:  # network errors, bad JSON, ...
        traceback.print_exc()
        print("python client flow: FAILED: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 1
    print("python client flow: OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

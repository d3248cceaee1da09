#!/usr/bin/env python3
"""End-to-end flow against a real `latchkey serve` and an auto-approving fake provider.

Environment:
  LATCHKEY_URL          base URL of latchkey (required)
  LATCHKEY_API_KEY      lk_ak_... key (required)
  LATCHKEY_PROVIDER     provider name (default "google")
  LATCHKEY_USER_ID      user id (default "py-user-1")
  LATCHKEY_PROXY_PATH   path to GET through the proxy (default "api/me")

Prints "python client flow: OK" and exits 0 on success; exits 1 with a
message on stderr on any failure.
"""

import json
import os
import sys
import traceback
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from latchkey_client import Latchkey, LatchkeyError  # noqa: E402


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


def run():
    base_url = os.environ.get("LATCHKEY_URL")
    api_key = os.environ.get("LATCHKEY_API_KEY")
    check(base_url, "LATCHKEY_URL is not set")
    check(api_key, "LATCHKEY_API_KEY is not set")
    provider = os.environ.get("LATCHKEY_PROVIDER") or "google"
    user_id = os.environ.get("LATCHKEY_USER_ID") or "py-user-1"
    proxy_path = os.environ.get("LATCHKEY_PROXY_PATH") or "api/me"

    lk = Latchkey(base_url, api_key, user_id=user_id, timeout=10.0)

    step("create_auth_session(%r, %r)" % (user_id, provider))
    session = lk.create_auth_session(user_id, provider)
    check(session.get("status") == "pending", "new session status is %r, want 'pending'" % session.get("status"))
    check(session.get("session_id"), "session has no session_id: %r" % session)
    check(session.get("auth_url"), "session has no auth_url: %r" % session)

    step("open auth_url (following redirects to the callback)")
    browser = urllib.request.build_opener()  # follows redirects, like a browser
    with browser.open(session["auth_url"], timeout=10) as resp:
        page = resp.read().decode("utf-8", errors="replace")
        check(resp.status == 200, "callback page returned HTTP %s" % resp.status)
    check("Connected" in page, "callback page does not say 'Connected': %r" % page[:300])

    step("wait_for_session")
    final = lk.wait_for_session(session["session_id"], timeout=10, interval=0.1)
    check(final.get("status") == "complete", "session ended as %r: %r" % (final.get("status"), final))

    step("proxy_get(%r, %r)" % (provider, proxy_path))
    resp = lk.proxy_get(provider, proxy_path)
    check(resp.status == 200, "proxy returned HTTP %d: %s" % (resp.status, resp.text[:300]))
    print(json.dumps(resp.json(), sort_keys=True), flush=True)

    step("list_connections")
    conns = lk.list_connections()
    mine = [c for c in conns if c.get("provider") == provider]
    check(len(mine) == 1, "want exactly one %r connection, got %r" % (provider, conns))
    check(mine[0].get("status") == "active", "connection status is %r, want 'active'" % mine[0].get("status"))
    leaked = find_token_keys(conns)
    check(not leaked, "connection listing exposes token-like keys: %s" % ", ".join(leaked))

    step("delete_connection(%r)" % provider)
    deleted = lk.delete_connection(provider)
    check(deleted.get("deleted") is True, "delete_connection returned %r" % deleted)

    step("list_connections after delete")
    conns = lk.list_connections()
    check(conns == [], "connections after delete: %r" % conns)

    step("proxy_get after delete must raise not_connected")
    try:
        resp = lk.proxy_get(provider, proxy_path)
    except LatchkeyError as e:
        check(e.code == "not_connected", "proxy after delete raised %s, want code not_connected" % e)
    else:
        raise FlowFailure(
            "proxy after delete did not raise; got HTTP %d: %s" % (resp.status, resp.text[:300])
        )


def main():
    try:
        run()
    except FlowFailure as e:
        print("python client flow: FAILED: %s" % e, file=sys.stderr)
        return 1
    except LatchkeyError as e:
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

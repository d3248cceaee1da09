#!/usr/bin/env python3
"""The tools API end to end with either client: register an OAuth-protected MCP server, see its
401 challenge through mcp(), initiate, let the test's "browser" sign in and approve, complete,
talk MCP through latchkey, and delete.

Environment:
  LATCHKEY_URL, LATCHKEY_API_KEY   latchkey and a project key (required)
  LATCHKEY_CLIENT                  "sync" (default) or "async"
  LATCHKEY_MCP_URL                 the MCP server (required)
  LATCHKEY_TEST_CONTROL            the test's control server: GET /approve?url=... signs in and
                                   approves at latchkey's authorization server and answers with the
                                   redirect URI the browser was sent to (required)

Prints "python tools flow: OK" and exits 0 on success.
"""

import asyncio
import os
import sys
import traceback
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import latchkey_client as lk  # noqa: E402
from tests.flow import Awaitable, FlowFailure, check, step  # noqa: E402

REDIRECT = "http://127.0.0.1:7777/callback"


async def run():
    base_url = os.environ["LATCHKEY_URL"]
    api_key = os.environ["LATCHKEY_API_KEY"]
    mcp_url = os.environ["LATCHKEY_MCP_URL"]
    control = os.environ["LATCHKEY_TEST_CONTROL"]
    if os.environ.get("LATCHKEY_CLIENT", "sync") == "async":
        client = lk.AsyncLatchkey(base_url, api_key, timeout=10.0)
    else:
        client = Awaitable(lk.Latchkey(base_url, api_key, timeout=10.0))

    step("create_tool")
    created = await client.create_tool("Test MCP", mcp_url, redirect_uris=[REDIRECT])
    tool_id = created["item_id"]
    check(created["is_success"] is True and tool_id.startswith("tl_"), "create_tool returned %r" % created)
    check((await client.get_tool(tool_id))["connection"]["status"] == "not_connected", "a new tool is connected")

    step("mcp before connecting: the server's own 401 challenge")
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    try:
        await client.mcp(tool_id, init)
    except lk.McpHttpError as e:
        check(e.status == 401 and "resource_metadata" in (e.www_authenticate or ""), "challenge: %r" % e)
    else:
        raise FlowFailure("mcp() before connecting did not raise")

    step("initiate_oauth, browser, complete_oauth")
    started = await client.initiate_oauth(tool_id, REDIRECT)
    with urllib.request.urlopen(
        control + "/approve?" + urllib.parse.urlencode({"url": started["authorization_url"]}), timeout=30
    ) as resp:
        location = resp.read().decode()
    check(location.startswith(REDIRECT), "the browser ended at %r" % location)
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    check(q["state"] == started["state"], "state changed on the way")
    done = await client.complete_oauth(tool_id, q["code"], q["state"], iss=q.get("iss"))
    check(done["is_success"] is True, "complete_oauth returned %r" % done)
    check((await client.get_tool(tool_id))["connection"]["status"] == "connected", "tool not connected")

    step("complete_oauth again: the state is spent (422, validation_error)")
    try:
        await client.complete_oauth(tool_id, q["code"], q["state"], iss=q.get("iss"))
    except lk.InvalidRequestError as e:
        check((e.status, e.code) == (422, "validation_error"), "replay raised %r" % e)
        check(e.errors and e.errors[0]["type"] == "value_error.csrf", "errors: %r" % e.errors)
    else:
        raise FlowFailure("a replayed state did not raise")

    step("mcp: initialize, initialized, tools/list, tools/call")
    reply = await client.mcp(tool_id, init)
    check(reply["result"]["serverInfo"]["name"] == "latchkey-test-mcp", "initialize: %r" % reply)
    check(await client.mcp(tool_id, {"jsonrpc": "2.0", "method": "notifications/initialized"}) is None, "notification")
    tools = await client.mcp(tool_id, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    check([t["name"] for t in tools["result"]["tools"]] == ["whoami", "admin"], "tools/list: %r" % tools)
    call = await client.mcp(tool_id, {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                                      "params": {"name": "whoami", "arguments": {}}})
    text = call["result"]["content"][0]["text"]
    check(text == "you are tool-user@example.com", "whoami: %r" % text)
    print(text, flush=True)

    step("a 403 insufficient_scope comes back as McpHttpError with its challenge")
    try:
        await client.mcp(tool_id, {"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                                   "params": {"name": "admin", "arguments": {}}})
    except lk.McpHttpError as e:
        check(e.status == 403 and "insufficient_scope" in (e.www_authenticate or ""), "403: %r" % e)
    else:
        raise FlowFailure("admin without its scope did not raise")

    step("delete_tool, then get_tool raises NotFoundError")
    check((await client.delete_tool(tool_id))["is_success"] is True, "delete_tool")
    try:
        await client.get_tool(tool_id)
    except lk.NotFoundError as e:
        check(e.code == "not_found" and e.message == "Tool not found", "get after delete: %r" % e)
    else:
        raise FlowFailure("get_tool after delete did not raise")
    if hasattr(client, "aclose"):
        await client.aclose()


def main():
    try:
        asyncio.run(run())
    except FlowFailure as e:
        print("python tools flow: FAILED: %s" % e, file=sys.stderr)
        return 1
    except Exception as e:
        traceback.print_exc()
        print("python tools flow: FAILED: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 1
    print("python tools flow: OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

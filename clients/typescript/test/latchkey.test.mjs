// End to end against a real `latchkey serve` (tests/api/ts_client.rs starts it with a fake
// provider, an OAuth-protected MCP server and a control server). Skipped without LATCHKEY_URL.
//
//   LATCHKEY_URL, LATCHKEY_API_KEY   latchkey and a project key; "google" points at the fake provider
//   LATCHKEY_MCP_URL                 the MCP server
//   LATCHKEY_TEST_CONTROL            GET /approve?url=… signs in and approves at latchkey's
//                                    authorization server like a browser and answers with the
//                                    redirect URI it ends at; POST /provider/forget-tokens makes the
//                                    fake provider forget every token

import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";

import * as lk from "../index.js";

const env = process.env;
const skip = env.LATCHKEY_URL ? false : "LATCHKEY_URL is not set (tests/api/ts_client.rs sets it)";
const REDIRECT = "http://127.0.0.1:7777/callback";

async function openInBrowser(url) {
  const page = await fetch(url); // follows redirects, like a browser
  assert.equal(page.status, 200);
  assert.match(await page.text(), /Connected/);
}

async function connect(client) {
  const session = await client.createAuthSession("google");
  assert.equal(session.status, "pending");
  await openInBrowser(session.auth_url);
  const final = await client.waitForSession(session.session_id, { timeoutMs: 10000, intervalMs: 100 });
  assert.equal(final.status, "complete");
}

test("vault: session, browser, wait, initialize, proxy, list, delete, typed errors", { skip }, async () => {
  const client = new lk.Latchkey(env.LATCHKEY_URL, env.LATCHKEY_API_KEY, { userId: "ts-user-1", timeoutMs: 10000 });
  assert.deepEqual(await client.initialize(), []);
  await connect(client);
  await client.initialize();
  assert.deepEqual(Object.keys(client.connections), ["google"]);

  const me = await client.proxyGet("google", "me");
  assert.equal(me.status, 200);
  assert.equal(me.json().id, "fake-user-1");
  console.log("proxied as", me.json().id);

  const conns = await client.listConnections();
  assert.equal(conns.length, 1);
  assert.equal(conns[0].status, "active");
  assert.ok(!JSON.stringify(conns).toLowerCase().includes("token"), "no token in the listing");

  assert.equal((await client.deleteConnection("google")).deleted, true);
  assert.deepEqual(await client.listConnections(), []);
  await assert.rejects(client.proxyGet("google", "me"), (e) => e instanceof lk.NotConnectedError && e.code === "not_connected");
  await assert.rejects(client.createAuthSession("no-such-provider"), (e) => e instanceof lk.NotFoundError && e.code === "unknown_provider");

  const wrong = new lk.Latchkey(env.LATCHKEY_URL, env.LATCHKEY_API_KEY + "x", { userId: "ts-user-1" });
  await assert.rejects(wrong.initialize(), (e) => {
    assert.ok(e instanceof lk.AuthenticationError);
    assert.equal(e.code, "invalid_api_key");
    assert.ok(!`${e} ${e.stack}`.includes(env.LATCHKEY_API_KEY));
    return true;
  });

  // The provider forgets every token: the refresh is refused and the user must connect again.
  const other = new lk.Latchkey(env.LATCHKEY_URL, env.LATCHKEY_API_KEY, { userId: "ts-user-2" });
  await connect(other);
  const forgot = await fetch(env.LATCHKEY_TEST_CONTROL + "/provider/forget-tokens", { method: "POST" });
  assert.equal(forgot.status, 200);
  await assert.rejects(other.proxyGet("google", "me"), (e) => {
    assert.ok(e instanceof lk.ReauthorizationRequiredError, String(e));
    assert.equal(e.status, 401);
    return true;
  });
  assert.equal((await other.listConnections())[0].status, "reauthorization_required");
});

test("webhooks: create, list, get, a real signed delivery verified, delete", { skip }, async () => {
  // A receiver on loopback, as an app would run one: it keeps the raw body, as verifyWebhook needs.
  const deliveries = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      deliveries.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(204).end();
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}/latchkey-webhooks`;
  try {
    const client = new lk.Latchkey(env.LATCHKEY_URL, env.LATCHKEY_API_KEY, { userId: "ts-hook-user", timeoutMs: 10000 });
    const hook = await client.createWebhook(url, { events: ["connection.created"] });
    assert.match(hook.secret, /^whsec_/);
    assert.deepEqual(hook.events, ["connection.created"]);
    const listed = (await client.listWebhooks()).filter((h) => h.webhook_id === hook.webhook_id);
    assert.equal(listed.length, 1);
    assert.equal(listed[0].secret, undefined, "the secret is shown once");
    assert.deepEqual((await client.getWebhook(hook.webhook_id)).failures, []);

    await connect(client);
    let delivery;
    for (let i = 0; i < 200 && !delivery; i++) {
      delivery = deliveries.find((d) => JSON.parse(d.body).data?.user_id === "ts-hook-user");
      if (!delivery) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(delivery, "the connection.created delivery arrived");
    const event = lk.verifyWebhook(hook.secret, delivery.headers, delivery.body);
    assert.equal(event.type, "connection.created");
    assert.equal(event.data.provider, "google");
    const tampered = Buffer.from(delivery.body.toString().replace("google", "gmail"));
    assert.throws(() => lk.verifyWebhook(hook.secret, delivery.headers, tampered), lk.WebhookVerificationError);

    await client.deleteWebhook(hook.webhook_id);
    assert.ok((await client.listWebhooks()).every((h) => h.webhook_id !== hook.webhook_id));
  } finally {
    server.close();
  }
});

test("tools: register, challenge, initiate, browser, complete, MCP, delete", { skip }, async () => {
  const client = new lk.Latchkey(env.LATCHKEY_URL, env.LATCHKEY_API_KEY, { timeoutMs: 10000 });
  const created = await client.createTool("Test MCP", env.LATCHKEY_MCP_URL, { redirectUris: [REDIRECT] });
  const toolId = created.item_id;
  assert.match(toolId, /^tl_/);
  assert.equal((await client.getTool(toolId)).connection.status, "not_connected");

  const init = {
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } },
  };
  await assert.rejects(client.mcp(toolId, init), (e) => {
    assert.ok(e instanceof lk.McpHttpError, String(e));
    assert.equal(e.status, 401);
    assert.match(e.wwwAuthenticate, /resource_metadata/);
    return true;
  });

  const started = await client.initiateOAuth(toolId, REDIRECT);
  const approved = await fetch(
    env.LATCHKEY_TEST_CONTROL + "/approve?" + new URLSearchParams({ url: started.authorization_url }),
  );
  const location = new URL(await approved.text());
  assert.equal(location.origin + location.pathname, REDIRECT);
  const q = location.searchParams;
  assert.equal(q.get("state"), started.state);
  const done = await client.completeOAuth(toolId, q.get("code"), q.get("state"), { iss: q.get("iss") ?? undefined });
  assert.equal(done.is_success, true);
  assert.equal((await client.getTool(toolId)).connection.status, "connected");
  await assert.rejects(client.completeOAuth(toolId, q.get("code"), q.get("state"), { iss: q.get("iss") ?? undefined }), (e) => {
    assert.ok(e instanceof lk.InvalidRequestError);
    assert.equal(e.code, "validation_error");
    assert.equal(e.errors[0].type, "value_error.csrf");
    return true;
  });

  assert.equal((await client.mcp(toolId, init)).result.serverInfo.name, "latchkey-test-mcp");
  assert.equal(await client.mcp(toolId, { jsonrpc: "2.0", method: "notifications/initialized" }), null);
  const tools = await client.mcp(toolId, { jsonrpc: "2.0", id: 2, method: "tools/list" });
  assert.deepEqual(tools.result.tools.map((t) => t.name), ["whoami", "admin"]);
  const call = await client.mcp(toolId, {
    jsonrpc: "2.0",
    id: 3,
    method: "tools/call",
    params: { name: "whoami", arguments: {} },
  });
  assert.equal(call.result.content[0].text, "you are tool-user@example.com");
  console.log(call.result.content[0].text);
  await assert.rejects(
    client.mcp(toolId, { jsonrpc: "2.0", id: 4, method: "tools/call", params: { name: "admin", arguments: {} } }),
    (e) => e instanceof lk.McpHttpError && e.status === 403 && /insufficient_scope/.test(e.wwwAuthenticate),
  );

  assert.equal((await client.deleteTool(toolId)).is_success, true);
  await assert.rejects(client.getTool(toolId), (e) => e instanceof lk.NotFoundError && e.message === "Tool not found");
});

test("vault: a returnUrl session is usable only after confirmSession (RFC 6749 §10.12)", { skip }, async () => {
  const client = new lk.Latchkey(env.LATCHKEY_URL, env.LATCHKEY_API_KEY, { userId: "ts-user-confirm", timeoutMs: 10000 });
  const returnUrl = "http://127.0.0.1:7777/connected";
  const session = await client.createAuthSession("google", { returnUrl });
  assert.equal(session.return_url, returnUrl);
  // Follow the redirects like a browser, stopping at the app's returnUrl (nothing listens there).
  let url = session.auth_url;
  for (let i = 0; i < 5 && !url.startsWith(returnUrl); i++) {
    const res = await fetch(url, { redirect: "manual" });
    assert.equal(res.status, 303, `${url} answered ${res.status}`);
    url = new URL(res.headers.get("location"), url).href;
  }
  const back = new URL(url);
  assert.equal(back.searchParams.get("session_id"), session.session_id);
  const token = back.searchParams.get("connect_token");
  assert.ok(token && token.startsWith("lk_ct_"));
  assert.equal((await client.checkSessionStatus(session.session_id)).status, "awaiting_confirmation");
  assert.deepEqual(await client.listConnections(), []);
  await assert.rejects(client.confirmSession(session.session_id, "lk_ct_wrong"), (e) => e.code === "invalid_connect_token");
  const done = await client.confirmSession(session.session_id, token);
  assert.equal(done.status, "complete");
  assert.equal((await client.listConnections()).length, 1);
  await assert.rejects(client.confirmSession(session.session_id, token), (e) => e.code === "not_awaiting_confirmation");
  await client.deleteConnection("google");
});

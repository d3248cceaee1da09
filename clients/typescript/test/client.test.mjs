// Unit tests against an in-process fake latchkey (node:http on loopback): request shapes, the
// reference's call forms, initialize(), the webhooks and tools APIs, mcp(), verifyWebhook, typed
// errors, bad input (no base URL or key, non-JSON, 5xx, timeouts, nothing listening) and the API
// key kept out of errors.

import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { createHmac } from "node:crypto";
import { inspect } from "node:util";

import * as lk from "../index.js";
import { Latchkey } from "../index.js";

const KEY = "lk_ak_supersecret_0123456789";
const WEIRD_USER = "ann smith/dev#1";
const TOOL = "tl_0123456789abcdef";
// A webhook secret and the Standard Webhooks specification's test vector for it.
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SPEC_BODY = '{"test": 2432232314}';
const SPEC_HEADERS = {
  "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
  "webhook-timestamp": "1614265330",
  "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
};
const ALL_EVENTS = [
  "connection.created",
  "connection.refresh_failed",
  "connection.recovered",
  "connection.deleted",
  "session.failed",
  "tool.connected",
  "tool.reauthorization_required",
];
const WEBHOOK = { webhook_id: "lkwh_1", url: "https://app.invalid/hooks", events: ALL_EVENTS, created_at: "x" };

let server;
let base;
let requests = [];
let sessionPolls = 0;
let pendingPolls = 2;

const marked = (status, code, message) => [status, { "x-latchkey-error": "1" }, { error: { code, message } }];
const toolErr = (status, detail) => [status, { "x-latchkey-error": "1" }, { detail }];

function respond(req) {
  const { method, path, headers } = req;
  if (path.startsWith("/slow/")) return new Promise((r) => setTimeout(() => r([200, {}, {}]), 1000));
  if (headers["x-api-key"] !== KEY) {
    if (path.startsWith("/tools")) return toolErr(401, "Invalid project key");
    return marked(401, "invalid_api_key", "bad key " + headers["x-api-key"]);
  }
  if (method === "POST" && path === "/v1/identity/sessions") {
    const b = JSON.parse(req.body);
    if (b.provider === "nope") return marked(404, "unknown_provider", "unknown provider 'nope'");
    return [201, {}, { session_id: "sess_1", auth_url: "http://provider.invalid/a", status: "pending", user_id: b.user_id }];
  }
  if (path === "/v1/identity/sessions/sess_1") {
    sessionPolls += 1;
    return [200, {}, { session_id: "sess_1", status: sessionPolls <= pendingPolls ? "pending" : "complete" }];
  }
  if (path === "/v1/identity/sessions/html") return [200, { "content-type": "text/html" }, "<html>not json</html>"];
  if (path === "/v1/identity/sessions/busy") return marked(503, "temporarily_unavailable", "The store is busy");
  if (path === "/v1/identity/sessions/gateway") return [502, { "content-type": "text/html" }, "<html>Bad Gateway</html>"];
  if (path.startsWith("/v1/identity/users/") && path.endsWith("/connections")) {
    return [200, {}, { user_id: "u", connections: [{ provider: "google", status: "active", scopes: [] }] }];
  }
  if (method === "DELETE" && path.startsWith("/v1/identity/users/")) {
    if (path.endsWith("/github")) return marked(404, "not_connected", "no github connection");
    return [200, {}, { deleted: true, provider: "google", revoked_upstream: false }];
  }
  if (path === "/v1/webhooks" && method === "POST") {
    const b = JSON.parse(req.body);
    return [201, {}, { ...WEBHOOK, url: b.url, events: b.events ?? ALL_EVENTS, secret: SECRET }];
  }
  if (path === "/v1/webhooks" && method === "GET") return [200, {}, { webhooks: [WEBHOOK] }];
  if (path === "/v1/webhooks/lkwh_1" && method === "GET") {
    const failure = { event_id: "evt_1", type: "session.failed", attempts: 8, error: "HTTP 500", failed_at: "x" };
    return [200, {}, { ...WEBHOOK, failures: [failure] }];
  }
  if (path === "/v1/webhooks/lkwh_1" && method === "DELETE") return [200, {}, { deleted: true, webhook_id: "lkwh_1" }];
  if (path.startsWith("/v1/proxy/google/redirect")) return [302, { location: base + "/target" }, ""];
  if (path.startsWith("/v1/proxy/google/missing")) return [404, {}, { error: { code: "not_found", message: "upstream says no" } }];
  if (path.startsWith("/v1/proxy/github/")) return marked(404, "not_connected", "user has no github connection");
  if (path.startsWith("/v1/proxy/revoked/")) return marked(401, "reauthorization_required", "connect again");
  if (path.startsWith("/v1/proxy/")) {
    return [200, { "content-type": "application/json; charset=utf-8", "x-upstream": "yes" }, { echo_path: path, method }];
  }
  if (path === "/tools" && method === "POST") {
    const b = JSON.parse(req.body);
    return [201, {}, { is_success: true, item_id: TOOL, detail: "Tool registered", error: {}, tool: b }];
  }
  if (path === "/tools/" + TOOL && method === "GET") return [200, {}, { tool_id: TOOL, connection: { status: "connected" } }];
  if (path === "/tools/" + TOOL && method === "DELETE") return [200, {}, { is_success: true, item_id: TOOL, detail: "Tool deleted", error: {} }];
  if (path.startsWith("/tools/tl_missing")) return toolErr(404, "Tool not found");
  if (path === `/tools/${TOOL}/initiate-oauth`) {
    return [200, {}, { authorization_url: "http://as.invalid/authorize", state: "st", expires_at: "x", item_id: TOOL }];
  }
  if (path === `/tools/${TOOL}/complete-oauth`) {
    const b = JSON.parse(req.body);
    if (b.state !== "st") {
      return [422, { "x-latchkey-error": "1" }, {
        detail: [{ loc: ["body", "state"], msg: "State parameter does not match. Possible CSRF attack.", type: "value_error.csrf" }],
      }];
    }
    return [200, {}, { is_success: true, item_id: TOOL, detail: "OAuth flow completed successfully", error: {} }];
  }
  if (path.startsWith("/tools/") && path.endsWith("/mcp")) return mcpAnswer(path.split("/")[2], req);
  return [404, {}, { error: { code: "not_found", message: "no route " + path } }];
}

function mcpAnswer(tool, req) {
  const msg = JSON.parse(req.body);
  if (tool === "tl_unconnected") return [401, { "www-authenticate": 'Bearer resource_metadata="http://mcp.invalid/prm"' }, ""];
  if (tool === "tl_revoked") return toolErr(401, "The tool's authorization can no longer be refreshed; run initiate-oauth again");
  if (tool === "tl_garbage") return [200, { "content-type": "application/json" }, "<html>"];
  if (msg.method === "initialize") {
    return [200, { "mcp-session-id": "sess-9" }, { jsonrpc: "2.0", id: msg.id, result: { protocolVersion: "2025-06-18", capabilities: {} } }];
  }
  if (msg.method === "notifications/initialized") return [202, {}, ""];
  if (msg.method === "tools/list") {
    const body =
      'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress"}\n\n' +
      "event: message\r\ndata: " + JSON.stringify({ jsonrpc: "2.0", id: msg.id, result: { tools: [] } }) + "\r\n\r\n";
    return [200, { "content-type": "text/event-stream" }, body];
  }
  return [200, {}, { jsonrpc: "2.0", id: msg.id ?? null, error: { code: -32601, message: "no" } }];
}

before(async () => {
  server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const record = {
      method: req.method,
      path: req.url,
      headers: req.headers,
      body: Buffer.concat(chunks).toString("utf8"),
      raw: Buffer.concat(chunks),
    };
    requests.push(record);
    let [status, headers, payload] = await respond(record);
    if (typeof payload === "object") {
      payload = JSON.stringify(payload);
      headers = { "content-type": "application/json", ...headers };
    }
    res.writeHead(status, headers);
    res.end(payload);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${server.address().port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

beforeEach(() => {
  requests = [];
  sessionPolls = 0;
  pendingPolls = 2;
});

const last = () => requests[requests.length - 1];
const client = (opts = { userId: "bound-user", timeoutMs: 5000 }) => new Latchkey(base + "/", KEY, opts);

async function rejects(promise, Cls, check) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof Cls, `${e} is not a ${Cls.name}`);
    assert.ok(e instanceof lk.LatchkeyError);
    check?.(e);
    return true;
  });
}

// ------------------------------------------------------------------------- the reference's calls

test("createAuthSession takes the provider and the bound user", async () => {
  const c = client();
  const s = await c.createAuthSession("google");
  assert.equal(s.status, "pending");
  assert.equal(last().path, "/v1/identity/sessions");
  assert.equal(last().headers["x-api-key"], KEY);
  assert.equal(last().headers["content-type"], "application/json");
  assert.deepEqual(JSON.parse(last().body), { user_id: "bound-user", provider: "google" });
  await c.createAuthSession("google", { userId: WEIRD_USER, scopes: ["a", "b"] });
  assert.deepEqual(JSON.parse(last().body), { user_id: WEIRD_USER, provider: "google", scopes: ["a", "b"] });
});

test("the reference's polling loop, initialize, proxyGet", async () => {
  const c = client();
  const session = await c.createAuthSession("google");
  for (;;) {
    const status = await c.checkSessionStatus(session.session_id);
    if (status.status === "complete") break;
  }
  assert.equal(sessionPolls, 3);
  assert.equal(c.connections, null);
  const conns = await c.initialize();
  assert.deepEqual(conns.map((x) => x.provider), ["google"]);
  assert.deepEqual(Object.keys(c.connections), ["google"]);
  assert.equal(last().path, "/v1/identity/users/bound-user/connections");
  const profile = await c.proxyGet("google", "gmail/v1/users/me/profile");
  assert.equal(profile.json().method, "GET");
  assert.equal(last().headers["x-user-id"], "bound-user");
  await c.deleteConnection("google");
  assert.deepEqual(c.connections, {});
});

test("waitForSession polls, then times out with session_timeout", async () => {
  const c = client();
  assert.equal((await c.waitForSession("sess_1", { timeoutMs: 5000, intervalMs: 10 })).status, "complete");
  pendingPolls = 1e9;
  await rejects(c.waitForSession("sess_1", { timeoutMs: 100, intervalMs: 20 }), lk.LatchkeyTimeoutError, (e) =>
    assert.equal(e.code, "session_timeout"),
  );
});

test("user ids are percent-encoded in paths and X-User-Id", async () => {
  const c = client();
  await c.listConnections({ userId: WEIRD_USER });
  assert.equal(last().path, "/v1/identity/users/ann%20smith%2Fdev%231/connections");
  await c.deleteConnection("goo gle", { userId: WEIRD_USER });
  assert.equal(last().path, "/v1/identity/users/ann%20smith%2Fdev%231/connections/goo%20gle");
  await c.proxyGet("goo gle", "a b/c%d/é?x#y", { userId: WEIRD_USER });
  assert.equal(last().path, "/v1/proxy/goo%20gle/a%20b/c%25d/%C3%A9%3Fx%23y");
  assert.equal(last().headers["x-user-id"], "ann%20smith%2Fdev%231");
});

test("userId is required before any request", async () => {
  const c = client({});
  for (const call of [
    () => c.createAuthSession("google"),
    () => c.initialize(),
    () => c.listConnections(),
    () => c.deleteConnection("google"),
    () => c.proxyGet("google", "x"),
  ]) {
    await rejects(call(), lk.ConfigurationError, (e) => assert.match(e.message, /userId/));
  }
  assert.equal(requests.length, 0);
});

// ----------------------------------------------------------------------------------------- proxy

test("proxy: path, params, headers, api host", async () => {
  const c = client();
  const resp = await c.proxyGet("google", "/gmail/v1/users/me@x.com/messages:batch", {
    params: { q: "a b&c", labelIds: ["X", "Y"] },
    headers: { "X-Extra": "1" },
    apiHost: "www.googleapis.com",
  });
  assert.ok(resp instanceof lk.ProxyResponse);
  assert.equal(resp.status, 200);
  assert.ok(resp.ok);
  assert.equal(resp.headers["x-upstream"], "yes");
  assert.equal(last().path, "/v1/proxy/google/gmail/v1/users/me@x.com/messages:batch?q=a+b%26c&labelIds=X&labelIds=Y");
  assert.equal(resp.json().echo_path, last().path);
  assert.equal(last().headers["x-extra"], "1");
  assert.equal(last().headers["x-latchkey-api-host"], "www.googleapis.com");
  assert.equal(last().body, "");
});

test("proxy: json, form, raw bodies and every method", async () => {
  const c = client();
  await c.proxyPost("google", "items", { json: { name: "x", n: [1, 2] } });
  assert.equal(last().headers["content-type"], "application/json");
  assert.deepEqual(JSON.parse(last().body), { name: "x", n: [1, 2] });
  await c.proxyPost("google", "form", { data: { a: "1 2", b: ["x", "y"] } });
  assert.equal(last().headers["content-type"], "application/x-www-form-urlencoded");
  assert.equal(last().body, "a=1+2&b=x&b=y");
  for (const [fn, method] of [["proxyPut", "PUT"], ["proxyPatch", "PATCH"], ["proxyDelete", "DELETE"]]) {
    const r = await c[fn]("google", "thing/1", { data: new Uint8Array([0, 0x72]), headers: { "Content-Type": "text/csv" } });
    assert.equal(r.json().method, method);
    assert.deepEqual([...last().raw], [0, 0x72]);
    assert.equal(last().headers["content-type"], "text/csv");
  }
  await c.proxyPost("google", "thing", { data: "hello" });
  assert.equal(last().headers["content-type"], "application/octet-stream");
  await assert.rejects(c.proxyPost("google", "thing", { data: "x", json: {} }), TypeError);
});

test("proxy: a provider's 4xx and redirects come back; latchkey's marked errors throw", async () => {
  const c = client();
  const missing = await c.proxyGet("google", "missing/thing");
  assert.equal(missing.status, 404);
  assert.equal(missing.ok, false);
  assert.equal(missing.json().error.message, "upstream says no");
  const redirect = await c.proxyGet("google", "redirect/here");
  assert.equal(redirect.status, 302);
  assert.equal(redirect.headers.location, base + "/target");
  assert.ok(!requests.some((r) => r.path === "/target"));
  await rejects(c.proxyGet("github", "user"), lk.NotConnectedError, (e) => {
    assert.equal(e.status, 404);
    assert.equal(e.code, "not_connected");
    assert.equal(e.message, "user has no github connection");
  });
  await rejects(c.proxyGet("revoked", "x"), lk.ReauthorizationRequiredError, (e) => assert.equal(e.status, 401));
});

// ------------------------------------------------------------------------------------- bad input

test("the constructor needs a base URL and a key", () => {
  for (const args of [["", KEY], [undefined, KEY], [base, ""], [base, undefined], ["127.0.0.1:8080", KEY], ["ftp://x", KEY]]) {
    assert.throws(
      () => new Latchkey(...args),
      (e) => e instanceof lk.ConfigurationError && e.code === "configuration_error" && !e.message.includes(KEY),
      JSON.stringify(args),
    );
  }
});

test("non-JSON, 5xx, timeouts and nothing listening are typed errors", async () => {
  const c = client();
  await rejects(c.checkSessionStatus("html"), lk.InvalidResponseError, (e) => {
    assert.equal(e.status, 200);
    assert.equal(e.code, "invalid_response");
    assert.match(e.message, /text\/html/);
  });
  await rejects(c.checkSessionStatus("busy"), lk.ServerError, (e) => {
    assert.equal(e.status, 503);
    assert.equal(e.code, "temporarily_unavailable");
  });
  await rejects(c.checkSessionStatus("gateway"), lk.ServerError, (e) => {
    assert.equal(e.status, 502);
    assert.equal(e.code, "http_error");
    assert.match(e.message, /Bad Gateway/);
  });
  // Behind the "/slow" prefix every answer takes 1 s.
  const started = Date.now();
  await rejects(new Latchkey(base + "/slow", KEY, { timeoutMs: 200 }).getTool("x"), lk.LatchkeyTimeoutError, (e) => {
    assert.equal(e.status, 0);
    assert.equal(e.code, "request_timeout");
  });
  assert.ok(Date.now() - started < 900);
  const port = await new Promise((r) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => r(p));
    });
  });
  await rejects(new Latchkey(`http://127.0.0.1:${port}`, KEY, { userId: "u" }).initialize(), lk.LatchkeyConnectionError, (e) =>
    assert.equal(e.code, "connection_error"),
  );
});

test("typed errors by latchkey code", async () => {
  const c = client();
  await rejects(c.createAuthSession("nope"), lk.NotFoundError, (e) => assert.equal(e.code, "unknown_provider"));
  await rejects(c.deleteConnection("github"), lk.NotConnectedError, (e) => assert.equal(e.code, "not_connected"));
});

test("a bad key is an AuthenticationError, and the key is never shown", async () => {
  const bad = new Latchkey(base, KEY + "x", { userId: "u" });
  let err;
  await rejects(bad.initialize(), lk.AuthenticationError, (e) => {
    err = e;
    assert.equal(e.status, 401);
    assert.equal(e.code, "invalid_api_key");
    assert.match(e.message, /\[redacted\]/);
  });
  await rejects(bad.getTool(TOOL), lk.AuthenticationError, (e) => {
    assert.equal(e.code, "invalid_api_key");
    assert.equal(e.message, "Invalid project key");
  });
  for (const text of [String(err), err.message, err.stack, inspect(err), inspect(bad), JSON.stringify(bad), inspect(client())]) {
    assert.ok(!text.includes(KEY), text);
  }
});

// -------------------------------------------------------------------------------------- webhooks

test("webhooks API", async () => {
  const c = client();
  const out = await c.createWebhook("https://app.invalid/hooks", { events: ["connection.refresh_failed", "session.failed"] });
  assert.equal(out.webhook_id, "lkwh_1");
  assert.equal(out.secret, SECRET);
  assert.equal(last().method, "POST");
  assert.equal(last().path, "/v1/webhooks");
  assert.equal(last().headers["x-api-key"], KEY);
  assert.equal(last().headers["content-type"], "application/json");
  assert.deepEqual(JSON.parse(last().body), {
    url: "https://app.invalid/hooks",
    events: ["connection.refresh_failed", "session.failed"],
  });
  assert.deepEqual((await c.createWebhook("https://app.invalid/all")).events, ALL_EVENTS);
  assert.deepEqual(JSON.parse(last().body), { url: "https://app.invalid/all" }); // absent: every event
  assert.deepEqual((await c.listWebhooks()).map((w) => w.webhook_id), ["lkwh_1"]);
  assert.deepEqual([last().method, last().path, last().body], ["GET", "/v1/webhooks", ""]);
  assert.equal((await c.getWebhook("lkwh_1")).failures[0].event_id, "evt_1");
  assert.deepEqual([last().method, last().path], ["GET", "/v1/webhooks/lkwh_1"]);
  assert.deepEqual(await c.deleteWebhook("lkwh_1"), { deleted: true, webhook_id: "lkwh_1" });
  assert.deepEqual([last().method, last().path], ["DELETE", "/v1/webhooks/lkwh_1"]);
  await rejects(c.getWebhook("lkwh_x/../y"), lk.NotFoundError, (e) => assert.equal(e.code, "not_found"));
  assert.equal(last().path, "/v1/webhooks/lkwh_x%2F..%2Fy");
  await rejects(c.createWebhook(""), lk.ConfigurationError);
});

// A Standard Webhooks v1 signature, computed here independently of the client.
function sign(secret, id, stamp, body) {
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  return "v1," + createHmac("sha256", key).update(`${id}.${stamp}.${body}`).digest("base64");
}

const STAMP = 1_800_000_000;
const EVENT = JSON.stringify({
  type: "connection.refresh_failed",
  id: "evt_1",
  timestamp: "2027-01-15T08:00:00Z",
  data: { user_id: "u", provider: "google" },
});

function delivery({ body = EVENT, secret = SECRET, stamp = STAMP } = {}) {
  const headers = { "Webhook-Id": "evt_1", "Webhook-Timestamp": String(stamp), "Webhook-Signature": sign(secret, "evt_1", stamp, body) };
  return { headers, body };
}

function refused(code, ...args) {
  assert.throws(
    () => lk.verifyWebhook(...args),
    (e) => {
      assert.ok(e instanceof lk.WebhookVerificationError, String(e));
      assert.ok(e instanceof lk.LatchkeyError);
      assert.equal(e.status, 0);
      assert.equal(e.code, code);
      assert.ok(!e.message.includes(SECRET.slice(6)));
      return true;
    },
  );
}

test("verifyWebhook: the specification's test vector, any header container, bytes or string", () => {
  assert.deepEqual(lk.verifyWebhook(SECRET, SPEC_HEADERS, SPEC_BODY, { now: 1614265330 }), { test: 2432232314 });
  const upper = Object.fromEntries(Object.entries(SPEC_HEADERS).map(([k, v]) => [k.toUpperCase(), v]));
  assert.deepEqual(lk.verifyWebhook(SECRET, upper, Buffer.from(SPEC_BODY), { now: new Date(1614265330_000) }), { test: 2432232314 });
  const bytes = new TextEncoder().encode(SPEC_BODY);
  assert.deepEqual(lk.verifyWebhook(SECRET, new Headers(SPEC_HEADERS), bytes.buffer, { now: 1614265330 + 299 }), { test: 2432232314 });
  assert.deepEqual(lk.verifyWebhook(SECRET, new Map(Object.entries(SPEC_HEADERS)), bytes, { now: 1614265330 }), { test: 2432232314 });
});

test("verifyWebhook: a signed event comes back; any matching v1 entry is enough", () => {
  const { headers, body } = delivery();
  const event = lk.verifyWebhook(SECRET, headers, body, { now: STAMP });
  assert.equal(event.type, "connection.refresh_failed");
  assert.equal(event.data.provider, "google");
  const other = delivery({ secret: "whsec_" + Buffer.alloc(32, "k").toString("base64") }).headers["Webhook-Signature"];
  headers["Webhook-Signature"] = `v1a,xyz ${other} ${headers["Webhook-Signature"]}`;
  assert.deepEqual(lk.verifyWebhook(SECRET, headers, body, { now: STAMP }), event);
  // Node joins a repeated header with ", ".
  headers["Webhook-Signature"] = [other, sign(SECRET, "evt_1", STAMP, body)].join(", ");
  assert.deepEqual(lk.verifyWebhook(SECRET, headers, body, { now: STAMP }), event);
  const fresh = delivery({ stamp: Math.floor(Date.now() / 1000) });
  assert.equal(lk.verifyWebhook(SECRET, fresh.headers, fresh.body).id, "evt_1"); // now by default
});

test("verifyWebhook refuses a tampered body, a wrong secret, another id or signature version", () => {
  const { headers, body } = delivery();
  refused("invalid_signature", SECRET, headers, body.replace("google", "github"), { now: STAMP });
  refused("invalid_signature", SECRET, headers, body + " ", { now: STAMP });
  const wrong = delivery({ secret: "whsec_" + Buffer.alloc(32, "x").toString("base64") });
  refused("invalid_signature", SECRET, wrong.headers, wrong.body, { now: STAMP });
  const good = headers["Webhook-Signature"];
  for (const sig of ["v2," + good.slice(3), good.slice(3), "v1," + good.slice(4), "v1,"]) {
    refused("invalid_signature", SECRET, { ...headers, "Webhook-Signature": sig }, body, { now: STAMP });
  }
  refused("invalid_signature", SECRET, { ...headers, "Webhook-Id": "evt_2" }, body, { now: STAMP });
});

test("verifyWebhook refuses an old or future timestamp and a missing header", () => {
  const { headers, body } = delivery();
  assert.ok(lk.verifyWebhook(SECRET, headers, body, { now: STAMP + 300 }));
  assert.ok(lk.verifyWebhook(SECRET, headers, body, { now: STAMP - 300 }));
  refused("timestamp_out_of_tolerance", SECRET, headers, body, { now: STAMP + 301 });
  refused("timestamp_out_of_tolerance", SECRET, headers, body, { now: STAMP - 301 });
  refused("timestamp_out_of_tolerance", SECRET, headers, body, { tolerance: 10, now: STAMP + 11 });
  refused("timestamp_out_of_tolerance", SECRET, headers, body); // 2027 is not now
  const frac = delivery({ stamp: "1800000000.5" });
  refused("invalid_timestamp", SECRET, frac.headers, frac.body, { now: STAMP });
  for (const name of ["Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"]) {
    const { [name]: _, ...rest } = headers;
    assert.throws(() => lk.verifyWebhook(SECRET, rest, body, { now: STAMP }), (e) => {
      assert.equal(e.code, "missing_header");
      assert.ok(e.message.includes(name.toLowerCase()));
      return true;
    });
  }
});

test("verifyWebhook: a signed non-object body, a malformed secret, a parsed body", () => {
  const arr = delivery({ body: "[1, 2]" });
  refused("invalid_body", SECRET, arr.headers, arr.body, { now: STAMP });
  const { headers, body } = delivery();
  for (const secret of ["", "whsec_", "whsec_not base64!", undefined]) {
    assert.throws(() => lk.verifyWebhook(secret, headers, body, { now: STAMP }), lk.ConfigurationError, String(secret));
  }
  assert.ok(lk.verifyWebhook(SECRET.slice(6), headers, body, { now: STAMP })); // the bare base64 is the same key
  assert.throws(() => lk.verifyWebhook(SECRET, headers, JSON.parse(body), { now: STAMP }), TypeError);
});

// ----------------------------------------------------------------------------------------- tools

test("tools API", async () => {
  const c = client();
  const out = await c.createTool("My server", "https://mcp.invalid/mcp", { redirectUris: ["http://127.0.0.1:5173/cb"] });
  assert.equal(out.item_id, TOOL);
  assert.deepEqual(JSON.parse(last().body), {
    name: "My server",
    server_url: "https://mcp.invalid/mcp",
    redirect_uris: ["http://127.0.0.1:5173/cb"],
  });
  assert.equal(last().headers["x-api-key"], KEY);
  assert.equal((await c.getTool(TOOL)).connection.status, "connected");
  const init = await c.initiateOAuth(TOOL, "http://127.0.0.1:5173/cb", { scopes: ["a"] });
  assert.deepEqual(JSON.parse(last().body), { redirect_uri: "http://127.0.0.1:5173/cb", scopes: ["a"] });
  const done = await c.completeOAuth(TOOL, "code-1", init.state, { iss: "http://as.invalid" });
  assert.equal(done.is_success, true);
  assert.deepEqual(JSON.parse(last().body), { code: "code-1", state: "st", iss: "http://as.invalid" });
  assert.equal((await c.deleteTool(TOOL)).detail, "Tool deleted");
  assert.equal(last().method, "DELETE");
  await rejects(c.getTool("tl_missing"), lk.NotFoundError, (e) => assert.equal(e.message, "Tool not found"));
  await rejects(c.completeOAuth(TOOL, "c", "wrong"), lk.InvalidRequestError, (e) => {
    assert.equal(e.status, 422);
    assert.equal(e.code, "validation_error");
    assert.equal(e.errors[0].type, "value_error.csrf");
    assert.match(e.message, /^body\.state: State parameter does not match/);
  });
});

test("mcp: JSON, event streams, notifications and the session", async () => {
  const c = client();
  const init = { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18" } };
  assert.equal((await c.mcp(TOOL, init)).result.protocolVersion, "2025-06-18");
  assert.equal(last().headers.accept, "application/json, text/event-stream");
  assert.equal(last().headers["mcp-session-id"], undefined);
  assert.equal(await c.mcp(TOOL, { jsonrpc: "2.0", method: "notifications/initialized" }), null);
  assert.deepEqual(await c.mcp(TOOL, { jsonrpc: "2.0", id: 2, method: "tools/list" }), {
    jsonrpc: "2.0",
    id: 2,
    result: { tools: [] },
  });
  assert.equal(last().headers["mcp-session-id"], "sess-9");
  assert.equal(last().headers["mcp-protocol-version"], "2025-06-18");
  assert.equal((await c.mcp(TOOL, { jsonrpc: "2.0", id: 3, method: "nope" })).error.code, -32601);
  await assert.rejects(c.mcp(TOOL, { method: "tools/list" }), TypeError);
});

test("mcp: the server's own errors, latchkey's, and garbage", async () => {
  const c = client();
  const msg = { jsonrpc: "2.0", id: 1, method: "tools/list" };
  await rejects(c.mcp("tl_unconnected", msg), lk.McpHttpError, (e) => {
    assert.equal(e.status, 401);
    assert.equal(e.code, "mcp_http_error");
    assert.match(e.wwwAuthenticate, /resource_metadata/);
  });
  await rejects(c.mcp("tl_revoked", msg), lk.ReauthorizationRequiredError, (e) =>
    assert.equal(e.code, "reauthorization_required"),
  );
  await rejects(c.mcp("tl_garbage", msg), lk.InvalidResponseError);
});

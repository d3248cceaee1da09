// Type-checked (never run) by `npm run typecheck` (tsc, strict): the declarations in index.d.ts
// accept the README's code and give the types a user expects.

import {
  Latchkey,
  LatchkeyError,
  NotConnectedError,
  InvalidRequestError,
  McpHttpError,
  ProxyResponse,
  WebhookVerificationError,
  verifyWebhook,
  type Connection,
  type SessionStatus,
  type WebhookEvent,
  type WebhookEventType,
} from "../index.js";

export async function readme(): Promise<void> {
  const client = new Latchkey("http://127.0.0.1:8080", "lk_ak_...", { userId: "user-123" });
  const session = await client.createAuthSession("google");
  console.log(`Please open: ${session.auth_url}`);
  while (true) {
    const status: SessionStatus = await client.checkSessionStatus(session.session_id);
    if (status.status === "complete") break;
    else if (status.status === "error") throw new Error(`Auth failed: ${status.error?.message}`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  await client.initialize();
  const profile: ProxyResponse = await client.proxyGet("google", "gmail/v1/users/me/profile");
  const body: { emailAddress: string } = profile.json<{ emailAddress: string }>();
  console.log(profile.status, body.emailAddress);
}

export async function surface(client: Latchkey): Promise<void> {
  const conns: Connection[] = await client.initialize();
  const google: Connection | undefined = client.connections?.["google"];
  console.log(conns.length, google?.status);
  await client.proxyPost("google", "x", { json: { a: 1 }, params: { q: ["a", "b"], n: 1 }, apiHost: "h" });
  await client.proxyPut("google", "x", { data: new Uint8Array([1]), headers: { "Content-Type": "text/plain" } });
  await client.proxyPatch("google", "x", { data: { a: "b" } });
  await client.proxyDelete("google", "x", { userId: "other" });
  await client.deleteConnection("google", { userId: "other" });
  const final = await client.waitForSession("vs_1", { timeoutMs: 1000, intervalMs: 10 });
  console.log(final.status);

  const tool = await client.createTool("n", "https://mcp.example.com/mcp", { redirectUris: ["https://app.example.com/cb"] });
  const id: string = tool.item_id;
  const started = await client.initiateOAuth(id, "https://app.example.com/cb", { scopes: ["a"] });
  await client.completeOAuth(id, "code", started.state, { iss: "https://as.example.com" });
  const status: "not_connected" | "connected" | "reauthorization_required" = (await client.getTool(id)).connection.status;
  console.log(status);
  const reply = await client.mcp(id, { jsonrpc: "2.0", id: 1, method: "tools/list" });
  console.log(reply?.result, reply?.error?.message);
  await client.deleteTool(id);

  try {
    await client.proxyGet("google", "x");
  } catch (e) {
    if (e instanceof NotConnectedError) console.log(e.code, e.status);
    else if (e instanceof InvalidRequestError) console.log(e.errors.map((f) => f.loc.join(".")));
    else if (e instanceof McpHttpError) console.log(e.wwwAuthenticate, e.content.length);
    else if (e instanceof LatchkeyError) console.log(e.message);
  }
}

export async function webhooks(client: Latchkey): Promise<void> {
  const hook = await client.createWebhook("https://app.example.com/latchkey-webhooks", { events: ["connection.refresh_failed"] });
  const secret: string = hook.secret;
  await client.createWebhook("https://app.example.com/all");
  const ids: string[] = (await client.listWebhooks()).map((w) => w.webhook_id);
  const failed: WebhookEventType[] = (await client.getWebhook(hook.webhook_id)).failures.map((f) => f.type);
  const deleted: boolean = (await client.deleteWebhook(hook.webhook_id)).deleted;
  console.log(secret, ids, failed, deleted);
}

// A fetch-style receiver (Request, Headers): the body as text, verified, the event narrowed by type.
export async function receive(request: Request, secret: string): Promise<Response> {
  let event: WebhookEvent;
  try {
    event = verifyWebhook(secret, request.headers, await request.text(), { tolerance: 60 });
  } catch (e) {
    if (e instanceof WebhookVerificationError) return new Response(e.code, { status: 400 });
    throw e;
  }
  verifyWebhook(secret, { "webhook-id": "evt_1", "x-many": ["a", "b"], absent: undefined }, new Uint8Array(), { now: new Date() });
  verifyWebhook(secret, new Map([["webhook-id", "evt_1"]]), new ArrayBuffer(0), { now: 1800000000 });
  if (event.type === "tool.reauthorization_required") console.log(event.id, event.data);
  return new Response(null, { status: 204 });
}

// The official MCP TypeScript SDK's step-by-step OAuth functions against a real MCP server that
// trusts latchkey: the server's 401 challenge → discoverOAuthProtectedResourceMetadata (RFC 9728) →
// discoverAuthorizationServerMetadata (RFC 8414) → registerClient (RFC 7591, with the scope the
// SDK's auth() would choose: the challenge's, else the metadata's) → startAuthorization (PKCE,
// resource) → sign-in and consent like a browser → exchangeAuthorization → tools/call with the
// SDK's Client → latchkey's clock moves past the token's lifetime → refreshAuthorization →
// tools/call → the admin tool answers 403 insufficient_scope → startAuthorization for the union of
// the granted and challenged scopes → consent → exchange → the admin tool answers.
// Usage: node steps.mjs <MCP server URL>   (env LATCHKEY_ISSUER, LATCHKEY_TEST_CONTROL)
// Prints one JSON line with what happened; exits non-zero on any failure.
import {
  discoverAuthorizationServerMetadata,
  discoverOAuthProtectedResourceMetadata,
  exchangeAuthorization,
  extractWWWAuthenticateParams,
  refreshAuthorization,
  registerClient,
  startAuthorization,
} from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { Browser, advanceClock, recordingFetch, scopeOf } from "./browser.mjs";

const serverUrl = new URL(process.argv[2]);
const issuer = process.env.LATCHKEY_ISSUER;
const redirectUrl = "http://127.0.0.1:33419/callback";
const log = [];
const fetchFn = recordingFetch(log, issuer);
const browser = new Browser(issuer, "ts-steps@example.com");
const report = { client: "typescript-sdk-steps", server: serverUrl.href, requests: log, authorizations: [] };

// One JSON-RPC POST without the SDK's transport, to see the HTTP status and challenge.
async function rawCall(token, method, params) {
  const headers = { "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(serverUrl, { method: "POST", headers, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
  await res.text();
  return { status: res.status, ...extractWWWAuthenticateParams(res), www_authenticate: res.headers.get("www-authenticate") };
}

// tools/call through the SDK's Client and transport, with the bearer token set by the app.
async function callTool(token, name, args = {}) {
  const transport = new StreamableHTTPClientTransport(serverUrl, { requestInit: { headers: { authorization: `Bearer ${token}` } } });
  const client = new Client({ name: "latchkey-interop-steps", version: "1.0.0" });
  await client.connect(transport);
  try {
    const result = await client.callTool({ name, arguments: args });
    if (result.isError) throw new Error(`${name}: ${JSON.stringify(result.content)}`);
    return JSON.parse(result.content[0].text);
  } finally {
    await client.close();
  }
}

function union(a, b) {
  const out = (a || "").split(" ").filter(Boolean);
  for (const s of (b || "").split(" ").filter(Boolean)) if (!out.includes(s)) out.push(s);
  return out.join(" ");
}

async function authorize(asUrl, metadata, clientInformation, scope, resource, state) {
  const { authorizationUrl, codeVerifier } = await startAuthorization(asUrl, { metadata, clientInformation, redirectUrl, scope, state, resource });
  const { redirect, pages } = await browser.authorize(authorizationUrl);
  report.authorizations.push({ requested_scope: scopeOf(authorizationUrl), resource: authorizationUrl.searchParams.get("resource"), pages });
  if (redirect.searchParams.get("error")) throw new Error(`authorization refused: ${redirect}`);
  if (redirect.searchParams.get("state") !== state) throw new Error(`state mismatch: ${redirect}`);
  if (redirect.searchParams.get("iss") !== issuer) throw new Error(`iss mismatch: ${redirect}`);
  return exchangeAuthorization(asUrl, {
    metadata,
    clientInformation,
    authorizationCode: redirect.searchParams.get("code"),
    codeVerifier,
    redirectUri: redirectUrl,
    resource,
    fetchFn,
  });
}

try {
  const challenge = await rawCall(undefined, "initialize", { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "steps", version: "1" } });
  report.challenge = challenge;
  if (challenge.status !== 401 || !challenge.resourceMetadataUrl) throw new Error(`expected a 401 challenge: ${JSON.stringify(challenge)}`);

  const prm = await discoverOAuthProtectedResourceMetadata(serverUrl, { resourceMetadataUrl: challenge.resourceMetadataUrl }, fetchFn);
  report.protected_resource_metadata = prm;
  const asUrl = prm.authorization_servers[0];
  const metadata = await discoverAuthorizationServerMetadata(asUrl, { fetchFn });
  report.authorization_server = metadata.issuer;
  const resource = new URL(prm.resource);

  // What auth() does (SEP-835): the challenge's scope, else the resource metadata's.
  const scope = challenge.scope || prm.scopes_supported?.join(" ");
  const clientInformation = await registerClient(asUrl, {
    metadata,
    clientMetadata: {
      client_name: "latchkey interop: TypeScript SDK step by step",
      redirect_uris: [redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    },
    scope,
    fetchFn,
  });
  report.client_id = clientInformation.client_id;

  const first = await authorize(asUrl, metadata, clientInformation, scope, resource, "steps-1");
  report.first = { access_token: first.access_token, refresh_token: first.refresh_token, scope: first.scope };
  report.echo = await callTool(first.access_token, "echo", { text: "hello from the TypeScript SDK" });

  // The access token's lifetime passes (latchkey's clock): the server refuses it, the refresh token works.
  await advanceClock();
  report.expired_call = await rawCall(first.access_token, "tools/list", {});
  const refreshed = await refreshAuthorization(asUrl, { metadata, clientInformation, refreshToken: first.refresh_token, resource, fetchFn });
  report.refreshed = { access_token: refreshed.access_token, refresh_token: refreshed.refresh_token, scope: refreshed.scope };
  report.echo_after_refresh = await callTool(refreshed.access_token, "echo", { text: "after refresh" });

  // Step-up: the admin tool needs mcp:admin.
  const denied = await rawCall(refreshed.access_token, "tools/call", { name: "admin_audit", arguments: {} });
  report.admin_denied = denied;
  if (denied.status !== 403 || denied.error !== "insufficient_scope") throw new Error(`expected 403 insufficient_scope: ${JSON.stringify(denied)}`);
  const stepUpScope = union(refreshed.scope || scope, denied.scope);
  const stepped = await authorize(asUrl, metadata, clientInformation, stepUpScope, resource, "steps-2");
  report.stepped_up = { access_token: stepped.access_token, refresh_token: stepped.refresh_token, scope: stepped.scope };
  report.admin = await callTool(stepped.access_token, "admin_audit");
  report.ok = true;
  console.log(JSON.stringify(report));
} catch (e) {
  report.ok = false;
  report.failure = String((e && e.stack) || e);
  console.log(JSON.stringify(report));
  process.exit(1);
}

// The official MCP TypeScript SDK the way an app uses it: Client + StreamableHTTPClientTransport
// with an OAuthClientProvider, so the SDK's auth() orchestrator does discovery, registration,
// PKCE, the token exchange and refresh by itself. The app's part is the browser (sign-in and
// consent at latchkey) and finishAuth. Then: tools/call → latchkey's clock moves past the token's
// lifetime, the server answers 401 and the transport refreshes and retries → the admin tool
// answers 403 insufficient_scope and the transport tries to step up → the app re-authorizes for
// the union of scopes if the SDK could not → the admin tool answers.
// Usage: node transport.mjs <MCP server URL>   (env LATCHKEY_ISSUER, LATCHKEY_TEST_CONTROL)
// Prints one JSON line with what happened; exits non-zero on any failure.
import { auth, UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport, StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { Browser, advanceClock, recordingFetch, scopeOf } from "./browser.mjs";

const serverUrl = new URL(process.argv[2]);
const issuer = process.env.LATCHKEY_ISSUER;
const redirectUrl = "http://127.0.0.1:33420/callback";
const log = [];
const fetchFn = recordingFetch(log, issuer);
const browser = new Browser(issuer, "ts-transport@example.com");
const report = { client: "typescript-sdk-transport", server: serverUrl.href, requests: log, authorizations: [], tokens: [] };

// An in-memory OAuthClientProvider, as an app would write one.
const store = {};
let pendingAuthorization;
let stateCounter = 0;
const provider = {
  get redirectUrl() {
    return redirectUrl;
  },
  get clientMetadata() {
    return {
      client_name: "latchkey interop: TypeScript SDK transport",
      redirect_uris: [redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  },
  state() {
    return `transport-${++stateCounter}`;
  },
  clientInformation() {
    return store.client;
  },
  saveClientInformation(c) {
    store.client = c;
  },
  tokens() {
    return store.tokens;
  },
  saveTokens(t) {
    store.tokens = t;
    report.tokens.push({ access_token: t.access_token, refresh_token: t.refresh_token, scope: t.scope });
  },
  redirectToAuthorization(url) {
    pendingAuthorization = url;
  },
  saveCodeVerifier(v) {
    store.verifier = v;
  },
  codeVerifier() {
    return store.verifier;
  },
  saveDiscoveryState(s) {
    store.discovery = s;
  },
  discoveryState() {
    return store.discovery;
  },
  invalidateCredentials(scope) {
    if (scope === "all" || scope === "tokens") delete store.tokens;
    if (scope === "all" || scope === "client") delete store.client;
    if (scope === "all" || scope === "verifier") delete store.verifier;
    if (scope === "all" || scope === "discovery") delete store.discovery;
  },
};

// The app's side of a redirect: the user signs in and approves; the app hands the code to the SDK.
async function completeAuthorization(transport) {
  const url = pendingAuthorization;
  pendingAuthorization = undefined;
  if (!url) throw new Error("the SDK asked for authorization without a URL");
  const { redirect, pages } = await browser.authorize(url);
  report.authorizations.push({ requested_scope: scopeOf(url), resource: url.searchParams.get("resource"), prompt: url.searchParams.get("prompt"), pages });
  if (redirect.searchParams.get("error")) throw new Error(`authorization refused: ${redirect}`);
  if (redirect.searchParams.get("iss") !== issuer) throw new Error(`iss mismatch: ${redirect}`);
  await transport.finishAuth(redirect.searchParams.get("code"));
}

async function connect() {
  for (let attempt = 0; attempt < 2; attempt++) {
    const transport = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider, fetch: fetchFn });
    const client = new Client({ name: "latchkey-interop-transport", version: "1.0.0" });
    try {
      await client.connect(transport);
      return { client, transport };
    } catch (e) {
      if (!(e instanceof UnauthorizedError)) throw e;
      await completeAuthorization(transport);
    }
  }
  throw new Error("could not connect after authorizing");
}

async function callTool(conn, name, args = {}) {
  const result = await conn.client.callTool({ name, arguments: args });
  if (result.isError) throw new Error(`${name}: ${JSON.stringify(result.content)}`);
  return JSON.parse(result.content[0].text);
}

try {
  const conn = await connect();
  report.client_id = store.client.client_id;
  report.authorization_server = store.discovery?.authorizationServerUrl;
  report.echo = await callTool(conn, "echo", { text: "hello from the transport" });

  // The access token expires (latchkey's clock): the server's 401 makes the transport call auth(),
  // which refreshes, and the call is retried.
  await advanceClock();
  report.echo_after_expiry = await callTool(conn, "echo", { text: "after expiry" });

  // Step-up: the transport sees 403 insufficient_scope and calls auth() with the challenged scope.
  try {
    report.admin = await callTool(conn, "admin_audit");
    report.step_up = "sdk";
  } catch (e) {
    if (e instanceof UnauthorizedError) {
      // The SDK started an authorization for more scope: the app completes it and retries.
      await completeAuthorization(conn.transport);
      report.admin = await callTool(conn, "admin_audit");
      report.step_up = "sdk-redirect";
    } else if (e instanceof StreamableHTTPError && e.code === 403) {
      // SDK 1.32: with a refresh token, auth() refreshes (the same scope) instead of asking the user,
      // and the transport gives up ("403 after trying upscoping", typescript-sdk#2255). The app drops
      // the tokens and authorizes for the granted scope plus the challenged one.
      report.sdk_step_up_error = String(e.message);
      const granted = (store.tokens?.scope || "").split(" ").filter(Boolean);
      const challenged = (log.lastChallenge?.scope || "").split(" ").filter(Boolean);
      const wanted = [...new Set([...granted, ...challenged])].join(" ");
      provider.invalidateCredentials("tokens");
      const result = await auth(provider, { serverUrl, scope: wanted, fetchFn });
      if (result !== "REDIRECT") throw new Error(`expected a new authorization, got ${result}`);
      await completeAuthorization(conn.transport);
      report.admin = await callTool(conn, "admin_audit");
      report.step_up = "app";
    } else {
      throw e;
    }
  }
  await conn.client.close();
  report.ok = true;
  console.log(JSON.stringify(report));
} catch (e) {
  report.ok = false;
  report.failure = String((e && e.stack) || e);
  console.log(JSON.stringify(report));
  process.exit(1);
}

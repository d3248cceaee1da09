// The official MCP TypeScript SDK (@modelcontextprotocol/sdk) as an OAuth client against latchkey:
// protected-resource discovery (RFC 9728, served here by a stand-in MCP server) → authorization
// server discovery → dynamic registration → authorization with PKCE → (sign-in and consent driven
// like a browser) → code exchange → refresh. Usage: node flow.mjs <resource port>
// Prints one JSON line with what happened; exits non-zero on any failure.
import http from "node:http";
import { auth, refreshAuthorization } from "@modelcontextprotocol/sdk/client/auth.js";

const issuer = process.env.LATCHKEY_ISSUER;
const port = Number(process.argv[2]);
const resource = `http://127.0.0.1:${port}/mcp`;
const redirectUrl = "http://127.0.0.1:33418/callback";

// A stand-in MCP server: 401 with resource_metadata, and its protected resource metadata.
const prm = { resource, authorization_servers: [issuer], bearer_methods_supported: ["header"] };
const server = http.createServer((req, res) => {
  if (req.url.startsWith("/.well-known/oauth-protected-resource")) {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(prm));
  } else {
    res.writeHead(401, {
      "www-authenticate": `Bearer resource_metadata="http://127.0.0.1:${port}/.well-known/oauth-protected-resource/mcp"`,
    });
    res.end();
  }
});
await new Promise((r) => server.listen(port, "127.0.0.1", r));

const store = {};
let authorizationUrl;
const provider = {
  get redirectUrl() { return redirectUrl; },
  get clientMetadata() {
    return {
      client_name: "MCP SDK conformance client",
      redirect_uris: [redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  },
  state() { return "sdk-state-1"; },
  clientInformation() { return store.client; },
  saveClientInformation(c) { store.client = c; },
  tokens() { return store.tokens; },
  saveTokens(t) { store.tokens = t; },
  redirectToAuthorization(url) { authorizationUrl = url; },
  saveCodeVerifier(v) { store.verifier = v; },
  codeVerifier() { return store.verifier; },
  saveDiscoveryState(s) { store.discovery = s; },
  discoveryState() { return store.discovery; },
};

// A browser that keeps one cookie and never follows redirects by itself.
let cookie;
async function browse(url, init = {}) {
  const headers = { ...(init.headers || {}) };
  if (cookie) headers.cookie = cookie;
  const res = await fetch(url, { ...init, headers, redirect: "manual" });
  const setCookie = res.headers.get("set-cookie");
  if (setCookie) cookie = setCookie.split(";")[0];
  return res;
}
const hidden = (html, name) => html.match(new RegExp(`name="${name}" value="([^"]*)"`))[1];
const form = (o) => ({ method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(o).toString() });

try {
  const first = await auth(provider, { serverUrl: resource });
  if (first !== "REDIRECT" || !authorizationUrl) throw new Error(`expected REDIRECT, got ${first}`);
  const a = new URL(authorizationUrl);
  if (a.searchParams.get("resource") !== resource) throw new Error(`resource not sent: ${authorizationUrl}`);
  if (a.searchParams.get("code_challenge_method") !== "S256") throw new Error("no S256");

  let res = await browse(authorizationUrl.toString());
  if (res.status !== 303) throw new Error(`authorize: ${res.status} ${await res.text()}`);
  res = await browse(res.headers.get("location"));
  const requestId = hidden(await res.text(), "request");
  res = await browse(`${issuer}/callback`, form({ request: requestId, email: "sdk-user@example.com" }));
  res = await browse(res.headers.get("location"));
  const csrf = hidden(await res.text(), "csrf");
  res = await browse(`${issuer}/consent`, form({ request: requestId, csrf, decision: "approve" }));
  const back = new URL(res.headers.get("location"));
  if (back.searchParams.get("iss") !== issuer) throw new Error(`iss mismatch: ${back}`);
  if (back.searchParams.get("state") !== "sdk-state-1") throw new Error(`state mismatch: ${back}`);
  const code = back.searchParams.get("code");

  const second = await auth(provider, { serverUrl: resource, authorizationCode: code });
  if (second !== "AUTHORIZED") throw new Error(`expected AUTHORIZED, got ${second}`);
  const firstTokens = store.tokens;
  const refreshed = await refreshAuthorization(store.discovery.authorizationServerUrl, {
    metadata: store.discovery.authorizationServerMetadata,
    clientInformation: store.client,
    refreshToken: firstTokens.refresh_token,
    resource: new URL(resource),
  });
  if (!refreshed.access_token || refreshed.refresh_token === firstTokens.refresh_token) throw new Error("refresh did not rotate");
  console.log(JSON.stringify({
    ok: true,
    client_id: store.client.client_id,
    authorization_server: store.discovery.authorizationServerUrl,
    access_token_prefix: firstTokens.access_token.slice(0, 6),
    refreshed_prefix: refreshed.refresh_token.slice(0, 6),
    scope: firstTokens.scope,
  }));
  server.close();
} catch (e) {
  console.error(String(e && e.stack || e));
  server.close();
  process.exit(1);
}

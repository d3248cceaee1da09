// An MCP server on the official TypeScript SDK, protected by latchkey.
//
// - RFC 9728 protected-resource metadata (the SDK's mcpAuthMetadataRouter) names latchkey as the
//   authorization server and declares the scopes this server offers: mcp:tools and mcp:admin.
// - Every request to /mcp carries a bearer token, checked by the SDK's requireBearerAuth with a
//   verifier that asks latchkey's introspection endpoint (RFC 7662, HTTP Basic with this resource
//   server's id and secret from `latchkey resource-server create`).
// - Without a valid token: 401 with WWW-Authenticate naming resource_metadata and scope="mcp:tools".
// - `echo` needs mcp:tools; `admin_audit` needs mcp:admin too, and a token without it gets
//   403 insufficient_scope with scope="mcp:tools mcp:admin" (step-up: the client asks again).
//
// Configuration (environment):
//   LATCHKEY_ISSUER                  latchkey's issuer, e.g. http://127.0.0.1:8080/oauth/2.1
//   LATCHKEY_RESOURCE_SERVER_ID      the resource server id (lkrs_…)
//   LATCHKEY_RESOURCE_SERVER_SECRET  its secret
//   PORT                             default 3000
//   HOST                             default 127.0.0.1
//   MCP_RESOURCE_URL                 this server's URL as registered, default http://HOST:PORT/mcp

import type { NextFunction, Request, Response } from "express";
import { z } from "zod";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { createMcpExpressApp } from "@modelcontextprotocol/sdk/server/express.js";
import { getOAuthProtectedResourceMetadataUrl, mcpAuthMetadataRouter } from "@modelcontextprotocol/sdk/server/auth/router.js";
import { requireBearerAuth } from "@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js";
import { InvalidTokenError, ServerError } from "@modelcontextprotocol/sdk/server/auth/errors.js";
import type { OAuthTokenVerifier } from "@modelcontextprotocol/sdk/server/auth/provider.js";
import type { AuthInfo } from "@modelcontextprotocol/sdk/server/auth/types.js";
import { discoverAuthorizationServerMetadata } from "@modelcontextprotocol/sdk/client/auth.js";
import { OAuthMetadataSchema } from "@modelcontextprotocol/sdk/shared/auth.js";

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is required (see README.md)`);
    process.exit(2);
  }
  return value;
}

const ISSUER = required("LATCHKEY_ISSUER");
const RS_ID = required("LATCHKEY_RESOURCE_SERVER_ID");
const RS_SECRET = required("LATCHKEY_RESOURCE_SERVER_SECRET");
const HOST = process.env.HOST ?? "127.0.0.1";
const PORT = Number(process.env.PORT ?? "3000");
const RESOURCE = new URL(process.env.MCP_RESOURCE_URL ?? `http://${HOST}:${PORT}/mcp`);

// The scopes this server declares (and registered with `latchkey resource-server create --scope`).
const TOOLS_SCOPE = "mcp:tools";
const ADMIN_SCOPE = "mcp:admin";
// Tools that need more than mcp:tools, and what they need.
const TOOL_SCOPES: Record<string, string[]> = { admin_audit: [TOOLS_SCOPE, ADMIN_SCOPE] };

// latchkey's RFC 8414 metadata: where to introspect, and what the metadata router re-publishes.
const discovered = await discoverAuthorizationServerMetadata(ISSUER);
const asMetadata = discovered && OAuthMetadataSchema.parse(discovered);
if (!asMetadata?.introspection_endpoint) {
  console.error(`no authorization server metadata with an introspection_endpoint for ${ISSUER}`);
  process.exit(2);
}
const introspectionEndpoint = asMetadata.introspection_endpoint;
// RFC 6749 §2.3.1: Basic credentials are form-encoded first.
const basic = "Basic " + Buffer.from(`${encodeURIComponent(RS_ID)}:${encodeURIComponent(RS_SECRET)}`).toString("base64");

// RFC 7662: ask latchkey whether the token is active, and for whom, which scopes and which resource.
const verifier: OAuthTokenVerifier = {
  async verifyAccessToken(token: string): Promise<AuthInfo> {
    let res: globalThis.Response;
    try {
      res = await fetch(introspectionEndpoint, {
        method: "POST",
        headers: { authorization: basic, "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
        body: new URLSearchParams({ token }).toString(),
        signal: AbortSignal.timeout(5000),
      });
    } catch {
      throw new ServerError("the authorization server did not answer");
    }
    if (!res.ok) {
      // 401 here means this server's own id or secret is wrong: a server error, not the client's.
      throw new ServerError(`introspection failed with ${res.status}`);
    }
    const data = (await res.json()) as Record<string, unknown>;
    if (data.active !== true) throw new InvalidTokenError("The access token is not active");
    const aud = ([] as unknown[]).concat(data.aud ?? []).find((a): a is string => typeof a === "string");
    return {
      token,
      clientId: String(data.client_id ?? ""),
      scopes: typeof data.scope === "string" ? data.scope.split(" ").filter(Boolean) : [],
      expiresAt: typeof data.exp === "number" ? data.exp : undefined,
      resource: aud ? new URL(aud) : undefined,
      extra: { sub: data.sub, username: data.username },
    };
  },
};

const resourceMetadataUrl = getOAuthProtectedResourceMetadataUrl(RESOURCE);
// The SDK's middleware puts scope="…" (its requiredScopes) in every 401 and 403 challenge.
const bearer = (scopes: string[]) =>
  requireBearerAuth({ verifier, requiredScopes: scopes, resourceMetadataUrl, expectedResource: RESOURCE });
const toolsAuth = bearer([TOOLS_SCOPE]);
const scopedAuth = Object.fromEntries(Object.entries(TOOL_SCOPES).map(([tool, scopes]) => [tool, bearer(scopes)]));

// A tools/call of a tool that needs more scope is checked with that tool's scopes, so the HTTP
// answer is 403 insufficient_scope naming them; everything else needs mcp:tools.
function authenticate(req: Request, res: Response, next: NextFunction) {
  const messages: unknown[] = Array.isArray(req.body) ? req.body : [req.body];
  for (const m of messages) {
    const msg = m as { method?: unknown; params?: { name?: unknown } } | null;
    const tool = msg?.method === "tools/call" ? msg.params?.name : undefined;
    if (typeof tool === "string" && scopedAuth[tool]) return scopedAuth[tool](req, res, next);
  }
  return toolsAuth(req, res, next);
}

function caller(authInfo: AuthInfo | undefined) {
  return {
    subject: authInfo?.extra?.sub,
    username: authInfo?.extra?.username,
    client_id: authInfo?.clientId,
    scopes: authInfo?.scopes ?? [],
  };
}

function buildServer(): McpServer {
  const server = new McpServer({ name: "latchkey-example-typescript", version: "1.0.0" });
  server.registerTool(
    "echo",
    { description: "Echo the text back, with who asked (needs mcp:tools)", inputSchema: { text: z.string() } },
    async ({ text }, extra) => ({
      content: [{ type: "text", text: JSON.stringify({ echo: text, ...caller(extra.authInfo) }) }],
    }),
  );
  server.registerTool(
    "admin_audit",
    { description: "An administrative report (needs mcp:admin)" },
    async (extra) => {
      // The HTTP layer already refused tokens without mcp:admin; check again where it matters.
      if (!extra.authInfo?.scopes.includes(ADMIN_SCOPE)) {
        return { isError: true, content: [{ type: "text", text: "mcp:admin is required" }] };
      }
      return { content: [{ type: "text", text: JSON.stringify({ admin: true, ...caller(extra.authInfo) }) }] };
    },
  );
  return server;
}

const app = createMcpExpressApp({ host: HOST });
// /.well-known/oauth-protected-resource/mcp: RFC 9728 metadata with the declared scopes.
app.use(
  mcpAuthMetadataRouter({
    oauthMetadata: asMetadata,
    resourceServerUrl: RESOURCE,
    scopesSupported: [TOOLS_SCOPE, ADMIN_SCOPE],
    resourceName: "latchkey example (TypeScript)",
  }),
);

// Stateless Streamable HTTP: a server and transport per request, JSON answers.
app.post(RESOURCE.pathname, authenticate, async (req: Request, res: Response) => {
  const server = buildServer();
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  res.on("close", () => {
    void transport.close();
    void server.close();
  });
  try {
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  } catch (error) {
    console.error("MCP request failed:", error);
    if (!res.headersSent) {
      res.status(500).json({ jsonrpc: "2.0", error: { code: -32603, message: "Internal server error" }, id: null });
    }
  }
});
const notAllowed = (_req: Request, res: Response) => {
  res.status(405).set("allow", "POST").json({ jsonrpc: "2.0", error: { code: -32000, message: "Method not allowed." }, id: null });
};
app.get(RESOURCE.pathname, authenticate, notAllowed);
app.delete(RESOURCE.pathname, authenticate, notAllowed);

app.listen(PORT, HOST, (error?: Error) => {
  if (error) {
    console.error("cannot listen:", error);
    process.exit(1);
  }
  console.log(`MCP server ${RESOURCE.href} (authorization server ${ISSUER})`);
});

// latchkey-client: a client for latchkey's token vault and tools APIs. ESM, no dependencies
// (the global fetch; node:crypto for verifyWebhook), Node 18+. Types: index.d.ts.

import { createHmac, timingSafeEqual } from "node:crypto";

export const VERSION = "0.1.0";

const REDACTED = "[redacted]";
const MCP_ACCEPT = "application/json, text/event-stream";
// Characters left unescaped in proxy paths (RFC 3986 pchar plus "/"), as the Python client.
const PATH_SAFE = "/:@!$&'()*+,;=-._~";

// ------------------------------------------------------------------------------------------ errors

/** An error reported by latchkey, or a failure to reach it. */
export class LatchkeyError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = new.target.name;
    this.status = status;
    this.code = code;
  }

  toString() {
    return `latchkey error ${this.status} ${this.code}: ${this.message}`;
  }
}

export class ConfigurationError extends LatchkeyError {
  constructor(message) {
    super(0, "configuration_error", message);
  }
}
export class AuthenticationError extends LatchkeyError {}
export class NotFoundError extends LatchkeyError {}
export class NotConnectedError extends LatchkeyError {}
export class ReauthorizationRequiredError extends LatchkeyError {}
export class ProviderConfigurationError extends LatchkeyError {}
export class InvalidRequestError extends LatchkeyError {
  constructor(status, code, message, errors = []) {
    super(status, code, message);
    /** The tools API's 422 `detail` list (`loc`, `msg`, `type`), else []. */
    this.errors = errors;
  }
}
export class UpstreamError extends LatchkeyError {}
export class ServerError extends LatchkeyError {}
export class InvalidResponseError extends LatchkeyError {}
export class LatchkeyTimeoutError extends LatchkeyError {}
export class LatchkeyConnectionError extends LatchkeyError {}
/** The tool's MCP server answered a forwarded message with an HTTP error of its own. */
export class McpHttpError extends LatchkeyError {
  constructor(status, message, wwwAuthenticate, content) {
    super(status, "mcp_http_error", message);
    this.wwwAuthenticate = wwwAuthenticate;
    this.content = content;
  }
}

/**
 * verifyWebhook refused a delivery: missing_header, invalid_timestamp, timestamp_out_of_tolerance,
 * invalid_signature or invalid_body. Answer it with a 4xx and do not act on it.
 */
export class WebhookVerificationError extends LatchkeyError {
  constructor(code, message) {
    super(0, code, message);
  }
}

const BY_CODE = {
  invalid_api_key: AuthenticationError,
  not_found: NotFoundError,
  unknown_provider: NotFoundError,
  not_connected: NotConnectedError,
  reauthorization_required: ReauthorizationRequiredError,
  provider_not_configured: ProviderConfigurationError,
  provider_misconfigured: ProviderConfigurationError,
  invalid_request: InvalidRequestError,
  body_too_large: InvalidRequestError,
  validation_error: InvalidRequestError,
  upstream_error: UpstreamError,
  upstream_refused: UpstreamError,
  upstream_response_too_large: UpstreamError,
  upstream_timeout: UpstreamError,
  internal_error: ServerError,
  temporarily_unavailable: ServerError,
  invalid_response: InvalidResponseError,
};

function errorClass(code, status) {
  if (Object.hasOwn(BY_CODE, code)) return BY_CODE[code];
  if (status === 401) return AuthenticationError;
  if (status === 404) return NotFoundError;
  if (status === 400 || status === 413 || status === 422) return InvalidRequestError;
  if (status >= 500) return ServerError;
  return LatchkeyError;
}

// The tools API answers in the Selise Blocks reference's shapes ({"detail": ...}, no code): the
// client names the code from the status.
const TOOL_CODES = {
  400: "invalid_request",
  401: "invalid_api_key",
  404: "not_found",
  409: "conflict",
  413: "body_too_large",
  422: "validation_error",
  500: "internal_error",
  502: "upstream_error",
  503: "temporarily_unavailable",
  504: "upstream_timeout",
};

function toolCode(status, detail, forwarding) {
  if (status === 401 && detail !== "Invalid project key") {
    return forwarding ? "reauthorization_required" : "upstream_refused";
  }
  return TOOL_CODES[status] ?? "http_error";
}

// ----------------------------------------------------------------------------------------- helpers

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8");

/** Percent-encode UTF-8 bytes except unreserved characters and `safe`. */
function quote(value, safe = "") {
  let out = "";
  for (const byte of encoder.encode(String(value))) {
    const ch = String.fromCharCode(byte);
    if (byte < 0x80 && (/[A-Za-z0-9_.~-]/.test(ch) || safe.includes(ch))) out += ch;
    else out += "%" + byte.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

function snippet(bytes, limit = 500) {
  const text = decoder.decode(bytes).trim();
  return text.length <= limit ? text : text.slice(0, limit) + "...";
}

function parseJson(bytes) {
  try {
    return { ok: true, value: JSON.parse(decoder.decode(bytes)) };
  } catch {
    return { ok: false };
  }
}

function encodeParams(params) {
  const q = new URLSearchParams();
  const entries =
    params instanceof URLSearchParams || Array.isArray(params) ? [...params] : Object.entries(params);
  for (const [k, v] of entries) {
    if (Array.isArray(v)) for (const x of v) q.append(k, String(x));
    else if (v !== undefined && v !== null) q.append(k, String(v));
  }
  return q.toString();
}

function sseMessages(text) {
  const out = [];
  let data = [];
  for (const line of [...text.split(/\r\n|\r|\n/), ""]) {
    if (line === "") {
      if (data.length) {
        const joined = data.join("\n");
        if (joined.trim()) out.push(JSON.parse(joined));
        data = [];
      }
      continue;
    }
    if (line.startsWith(":")) continue;
    const i = line.indexOf(":");
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? "" : line.slice(i + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data.push(value);
  }
  return out;
}

function pickReply(messages, id) {
  for (const m of messages) {
    if (m && typeof m === "object" && "id" in m && m.id === id && ("result" in m || "error" in m)) return m;
  }
  return messages.length ? messages[messages.length - 1] : null;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------- webhooks

/**
 * Check a latchkey webhook delivery (Standard Webhooks signatures) and return its event
 * {type, id, timestamp, data}. `headers`: a Headers, a Map or a plain object (Node's req.headers);
 * `body`: the raw body as received (string or bytes, not parsed JSON); `tolerance`: seconds the
 * webhook-timestamp may differ from `now` (unix seconds or a Date; default the current time).
 * Throws WebhookVerificationError.
 */
export function verifyWebhook(secret, headers, body, { tolerance = 300, now } = {}) {
  const key = webhookKey(secret);
  let raw;
  if (typeof body === "string") raw = Buffer.from(body, "utf8");
  else if (body instanceof Uint8Array) raw = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  else if (body instanceof ArrayBuffer) raw = Buffer.from(body);
  else throw new TypeError("body must be the raw request body (a string or bytes), not parsed JSON");
  const h = headerMap(headers);
  for (const name of ["webhook-id", "webhook-timestamp", "webhook-signature"]) {
    if (!h[name]) throw new WebhookVerificationError("missing_header", `the delivery has no ${name} header`);
  }
  const id = h["webhook-id"];
  const stamp = h["webhook-timestamp"];
  if (!/^[0-9]+$/.test(stamp)) {
    throw new WebhookVerificationError("invalid_timestamp", `webhook-timestamp is not unix seconds: ${JSON.stringify(stamp.slice(0, 40))}`);
  }
  const current = now == null ? Date.now() / 1000 : now instanceof Date ? now.getTime() / 1000 : Number(now);
  if (!(Math.abs(current - Number(stamp)) <= tolerance)) {
    throw new WebhookVerificationError(
      "timestamp_out_of_tolerance",
      `webhook-timestamp ${stamp} is more than ${tolerance}s from now (${Math.floor(current)})`,
    );
  }
  const expected = Buffer.from(createHmac("sha256", key).update(`${id}.${stamp}.`).update(raw).digest("base64"));
  let matched = false;
  for (const entry of h["webhook-signature"].split(/\s+/)) {
    const i = entry.indexOf(",");
    if (i < 0 || entry.slice(0, i) !== "v1") continue;
    // A trailing comma: repeated headers joined with ", " (base64 never ends with one).
    const sig = Buffer.from(entry.slice(i + 1).replace(/,$/, ""));
    // Every entry is compared, so the time taken does not say which one matched.
    if (sig.length === expected.length && timingSafeEqual(sig, expected)) matched = true;
  }
  if (!matched) throw new WebhookVerificationError("invalid_signature", "no webhook-signature entry matches the secret and body");
  const parsed = parseJson(raw);
  if (!parsed.ok || !parsed.value || typeof parsed.value !== "object" || Array.isArray(parsed.value)) {
    throw new WebhookVerificationError("invalid_body", "the signed body is not a JSON object");
  }
  return parsed.value;
}

function webhookKey(secret) {
  if (typeof secret !== "string" || !secret.trim()) {
    throw new ConfigurationError("secret is required (the whsec_... secret createWebhook returned)");
  }
  const text = secret.trim().replace(/^whsec_/, "");
  if (!text || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) {
    throw new ConfigurationError("secret must be the whsec_... secret createWebhook returned (base64 after whsec_)");
  }
  return Buffer.from(text, "base64");
}

function headerMap(headers) {
  const out = {};
  const entries = typeof headers?.entries === "function" ? headers.entries() : Object.entries(headers || {});
  for (const [k, v] of entries) {
    if (v === undefined || v === null) continue;
    const name = String(k).toLowerCase();
    const value = (Array.isArray(v) ? v.join(" ") : String(v)).trim();
    // A repeated header joins with a space: more signatures, or an id that matches nothing.
    out[name] = name in out ? `${out[name]} ${value}` : value;
  }
  return out;
}

// ---------------------------------------------------------------------------------- ProxyResponse

/** The upstream provider's response, passed through latchkey unchanged. */
export class ProxyResponse {
  constructor(status, headers, content) {
    this.status = status;
    /** Lower-case names. */
    this.headers = headers;
    /** The body's bytes. */
    this.content = content;
  }

  get ok() {
    return this.status >= 200 && this.status < 300;
  }

  text() {
    return decoder.decode(this.content);
  }

  json() {
    return JSON.parse(this.text());
  }
}

// ------------------------------------------------------------------------------------------ client

export class Latchkey {
  #apiKey;
  #fetch;
  #mcp = new Map();

  /**
   * @param {string} baseUrl e.g. "http://127.0.0.1:8080" (a path prefix is kept)
   * @param {string} apiKey the lk_ak_... key, sent as X-API-Key
   * @param {{userId?: string, timeoutMs?: number, fetch?: typeof fetch}} [options]
   */
  constructor(baseUrl, apiKey, options = {}) {
    if (typeof baseUrl !== "string" || !baseUrl.trim()) {
      throw new ConfigurationError("baseUrl is required, e.g. 'http://127.0.0.1:8080'");
    }
    if (typeof apiKey !== "string" || !apiKey.trim()) {
      throw new ConfigurationError("apiKey is required (the lk_ak_... key from `latchkey project create`)");
    }
    let url;
    try {
      url = new URL(baseUrl.trim());
    } catch {
      url = null;
    }
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || !url.host) {
      throw new ConfigurationError("baseUrl must be an http(s) URL, e.g. 'http://127.0.0.1:8080'");
    }
    const { userId = null, timeoutMs = 30000, fetch: fetchImpl = globalThis.fetch } = options;
    if (!(timeoutMs > 0)) throw new ConfigurationError("timeoutMs must be a positive number");
    if (typeof fetchImpl !== "function") throw new ConfigurationError("no fetch: use Node 18 or newer");
    this.baseUrl = baseUrl.trim().replace(/\/+$/, "");
    this.userId = userId;
    this.timeoutMs = timeoutMs;
    /** The user's connections by provider, loaded by initialize(); null before. */
    this.connections = null;
    this.#apiKey = apiKey;
    this.#fetch = fetchImpl;
  }

  toJSON() {
    return { baseUrl: this.baseUrl, userId: this.userId };
  }

  [Symbol.for("nodejs.util.inspect.custom")]() {
    return `Latchkey { baseUrl: ${JSON.stringify(this.baseUrl)}, userId: ${JSON.stringify(this.userId)} }`;
  }

  // ---------------------------------------------------------------------------------- identity

  async createAuthSession(provider, { userId, scopes, returnUrl } = {}) {
    if (!provider || typeof provider !== "string") {
      throw new ConfigurationError("provider is required, e.g. 'google'");
    }
    const body = { user_id: this.#user(userId), provider };
    if (scopes !== undefined && scopes !== null) body.scopes = [...scopes];
    if (returnUrl !== undefined && returnUrl !== null) body.return_url = returnUrl;
    return this.#vault("POST", "/v1/identity/sessions", body);
  }

  /** Confirm a returnUrl session's connection with the one-time connect_token the returnUrl received. */
  async confirmSession(sessionId, connectToken) {
    if (!connectToken || typeof connectToken !== "string") {
      throw new ConfigurationError("connectToken is required (the returnUrl received it)");
    }
    return this.#vault("POST", "/v1/identity/sessions/" + quote(sessionId) + "/confirm", {
      connect_token: connectToken,
    });
  }

  async checkSessionStatus(sessionId) {
    return this.#vault("GET", "/v1/identity/sessions/" + quote(sessionId));
  }

  /** Poll until the session is no longer pending; LatchkeyTimeoutError (session_timeout) after timeoutMs. */
  async waitForSession(sessionId, { timeoutMs = 300000, intervalMs = 2000 } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = await this.checkSessionStatus(sessionId);
      if (status.status !== "pending") return status;
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new LatchkeyTimeoutError(0, "session_timeout", `session ${sessionId} still pending after ${timeoutMs} ms`);
      }
      await sleep(Math.max(0, Math.min(intervalMs, remaining)));
    }
  }

  /** Load the user's connections into `connections` (by provider) and return them. */
  async initialize() {
    const conns = await this.listConnections();
    this.connections = Object.fromEntries(conns.map((c) => [String(c.provider), c]));
    return conns;
  }

  async listConnections({ userId } = {}) {
    const uid = this.#user(userId);
    const body = await this.#vault("GET", `/v1/identity/users/${quote(uid)}/connections`);
    return Array.isArray(body.connections) ? body.connections : [];
  }

  async deleteConnection(provider, { userId } = {}) {
    const uid = this.#user(userId);
    const out = await this.#vault("DELETE", `/v1/identity/users/${quote(uid)}/connections/${quote(provider)}`);
    if (this.connections && (userId === undefined || userId === null || userId === this.userId)) {
      delete this.connections[provider];
    }
    return out;
  }

  // ---------------------------------------------------------------------------------- webhooks

  /** Subscribe url to events (default: every event). The answer's secret (whsec_...) is shown only here. */
  async createWebhook(url, { events } = {}) {
    if (!url || typeof url !== "string") {
      throw new ConfigurationError("url is required, e.g. 'https://app.example.com/latchkey-webhooks'");
    }
    const body = { url };
    if (events != null) body.events = [...events];
    return this.#vault("POST", "/v1/webhooks", body);
  }

  /** The project's webhooks, without their secrets. */
  async listWebhooks() {
    const body = await this.#vault("GET", "/v1/webhooks");
    return Array.isArray(body.webhooks) ? body.webhooks : [];
  }

  /** The webhook, with `failures`: its newest deliveries that exhausted their retries. */
  async getWebhook(webhookId) {
    return this.#vault("GET", "/v1/webhooks/" + quote(webhookId));
  }

  async deleteWebhook(webhookId) {
    return this.#vault("DELETE", "/v1/webhooks/" + quote(webhookId));
  }


  /**
   * Call the provider's API through latchkey. The provider's 4xx/5xx are returned, not thrown;
   * latchkey's own errors (not connected, ...) throw.
   */
  async proxyRequest(method, provider, path, { userId, params, json, data, headers, apiHost } = {}) {
    const uid = this.#user(userId);
    if (json !== undefined && data !== undefined) throw new TypeError("pass either json or data, not both");
    let url = `${this.baseUrl}/v1/proxy/${quote(provider)}/${quote(String(path).replace(/^\/+/, ""), PATH_SAFE)}`;
    if (params) {
      const q = encodeParams(params);
      if (q) url += "?" + q;
    }
    const hdrs = {};
    let body;
    if (json !== undefined) {
      body = JSON.stringify(json);
      hdrs["Content-Type"] = "application/json";
    } else if (typeof data === "string") {
      body = data;
    } else if (data instanceof Uint8Array || data instanceof ArrayBuffer) {
      body = data;
    } else if (data !== undefined && data !== null) {
      body = encodeParams(data);
      hdrs["Content-Type"] = "application/x-www-form-urlencoded";
    }
    Object.assign(hdrs, headers || {});
    if (body !== undefined && !Object.keys(hdrs).some((k) => k.toLowerCase() === "content-type")) {
      hdrs["Content-Type"] = "application/octet-stream";
    }
    if (apiHost) hdrs["X-Latchkey-Api-Host"] = apiHost;
    // latchkey percent-decodes X-User-Id, so any user id (non-ASCII, or with "%") survives.
    hdrs["X-User-Id"] = quote(uid);
    const res = await this.#send(String(method).toUpperCase(), url, hdrs, body);
    if ((res.headers["x-latchkey-error"] || "").trim() === "1") throw this.#vaultError(res);
    return new ProxyResponse(res.status, res.headers, res.content);
  }

  proxyGet(provider, path, options) {
    return this.proxyRequest("GET", provider, path, options);
  }
  proxyPost(provider, path, options) {
    return this.proxyRequest("POST", provider, path, options);
  }
  proxyPut(provider, path, options) {
    return this.proxyRequest("PUT", provider, path, options);
  }
  proxyPatch(provider, path, options) {
    return this.proxyRequest("PATCH", provider, path, options);
  }
  proxyDelete(provider, path, options) {
    return this.proxyRequest("DELETE", provider, path, options);
  }

  // ------------------------------------------------------------------------------------- tools

  async createTool(name, serverUrl, { redirectUris, scopes, clientId, clientSecret } = {}) {
    const body = { name, server_url: serverUrl };
    if (redirectUris != null) body.redirect_uris = [...redirectUris];
    if (scopes != null) body.scopes = [...scopes];
    if (clientId != null) body.client_id = clientId;
    if (clientSecret != null) body.client_secret = clientSecret;
    return this.#tool("POST", "/tools", body);
  }

  async getTool(toolId) {
    return this.#tool("GET", "/tools/" + quote(toolId));
  }

  async deleteTool(toolId) {
    const out = await this.#tool("DELETE", "/tools/" + quote(toolId));
    this.#mcp.delete(toolId);
    return out;
  }

  async initiateOAuth(toolId, redirectUri, { scopes } = {}) {
    const body = { redirect_uri: redirectUri };
    if (scopes != null) body.scopes = [...scopes];
    return this.#tool("POST", `/tools/${quote(toolId)}/initiate-oauth`, body);
  }

  async completeOAuth(toolId, code, state, { iss } = {}) {
    const body = { code, state };
    if (iss != null) body.iss = iss;
    return this.#tool("POST", `/tools/${quote(toolId)}/complete-oauth`, body);
  }

  /**
   * Send one JSON-RPC message to the tool's MCP server; resolve to its JSON-RPC reply (null for a
   * notification). The server's session id and protocol version are kept per tool.
   */
  async mcp(toolId, message) {
    if (!message || typeof message !== "object" || message.jsonrpc !== "2.0" || !message.method) {
      throw new TypeError('message must be a JSON-RPC 2.0 request or notification: {jsonrpc: "2.0", method, ...}');
    }
    const session = this.#mcp.get(toolId) || {};
    const hdrs = { Accept: MCP_ACCEPT, "Content-Type": "application/json" };
    if (session.sessionId) hdrs["Mcp-Session-Id"] = session.sessionId;
    if (session.protocolVersion) hdrs["MCP-Protocol-Version"] = session.protocolVersion;
    const res = await this.#send("POST", `${this.baseUrl}/tools/${quote(toolId)}/mcp`, hdrs, JSON.stringify(message));
    if ((res.headers["x-latchkey-error"] || "").trim() === "1") throw this.#toolError(res, true);
    if (res.status < 200 || res.status >= 300) {
      const text = snippet(res.content, 200);
      throw new McpHttpError(
        res.status,
        `the MCP server answered HTTP ${res.status}${text ? ": " + this.#redact(text) : ""}`,
        res.headers["www-authenticate"] ?? null,
        res.content,
      );
    }
    if (res.status === 202 || res.status === 204 || !snippet(res.content, 1)) return null;
    const ctype = (res.headers["content-type"] || "").split(";")[0].trim().toLowerCase();
    let reply;
    try {
      const text = decoder.decode(res.content);
      reply = ctype === "text/event-stream" ? pickReply(sseMessages(text), message.id) : JSON.parse(text);
    } catch {
      throw new InvalidResponseError(
        res.status,
        "invalid_response",
        `the MCP server's answer is not JSON-RPC: ${this.#redact(snippet(res.content, 200))}`,
      );
    }
    const state = this.#mcp.get(toolId) || {};
    if (res.headers["mcp-session-id"]) state.sessionId = res.headers["mcp-session-id"];
    if (message.method === "initialize" && typeof reply?.result?.protocolVersion === "string") {
      state.protocolVersion = reply.result.protocolVersion;
    }
    this.#mcp.set(toolId, state);
    return reply;
  }

  // --------------------------------------------------------------------------------- internals

  #user(userId) {
    const uid = userId ?? this.userId;
    if (!uid) throw new ConfigurationError("userId is required (pass it here or to the constructor)");
    return uid;
  }

  #redact(text) {
    return text.split(this.#apiKey).join(REDACTED);
  }

  async #vault(method, path, body) {
    const res = await this.#json(method, path, body);
    if (res.status < 200 || res.status >= 300) throw this.#vaultError(res);
    return this.#readJson(res);
  }

  async #tool(method, path, body) {
    const res = await this.#json(method, path, body);
    if (res.status < 200 || res.status >= 300) throw this.#toolError(res, false);
    return this.#readJson(res);
  }

  #json(method, path, body) {
    const hdrs = { Accept: "application/json" };
    if (body !== undefined) hdrs["Content-Type"] = "application/json";
    return this.#send(method, this.baseUrl + path, hdrs, body === undefined ? undefined : JSON.stringify(body));
  }

  #readJson(res) {
    if (!snippet(res.content, 1)) return {};
    const parsed = parseJson(res.content);
    if (!parsed.ok) {
      throw new InvalidResponseError(
        res.status,
        "invalid_response",
        `expected JSON from latchkey, got ${res.headers["content-type"] || "no content type"}: ${this.#redact(snippet(res.content))}`,
      );
    }
    return parsed.value;
  }

  #vaultError(res) {
    let code = "http_error";
    let message = snippet(res.content);
    const parsed = parseJson(res.content);
    const err = parsed.ok && parsed.value && typeof parsed.value.error === "object" ? parsed.value.error : null;
    if (err) {
      code = String(err.code || code);
      message = String(err.message || message);
    }
    if (!message) message = `HTTP ${res.status}`;
    const Cls = errorClass(code, res.status);
    return new Cls(res.status, code, this.#redact(message));
  }

  #toolError(res, forwarding) {
    const parsed = parseJson(res.content);
    const detail = parsed.ok && parsed.value && typeof parsed.value === "object" ? parsed.value.detail : undefined;
    if (Array.isArray(detail)) {
      const errors = detail.filter((e) => e && typeof e === "object");
      const message = errors.map((e) => `${(e.loc || []).join(".")}: ${e.msg ?? ""}`).join("; ");
      return new InvalidRequestError(res.status, "validation_error", this.#redact(message), errors);
    }
    let code = "http_error";
    let message = snippet(res.content) || `HTTP ${res.status}`;
    if (typeof detail === "string" && detail) {
      code = toolCode(res.status, detail, forwarding);
      message = detail;
    }
    const Cls = errorClass(code, res.status);
    return new Cls(res.status, code, this.#redact(message));
  }

  async #send(method, url, headers, body) {
    const init = {
      method,
      headers: { ...headers, "X-API-Key": this.#apiKey, "User-Agent": `latchkey-client-js/${VERSION}` },
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(this.timeoutMs),
    };
    try {
      const res = await this.#fetch(url, init);
      const content = new Uint8Array(await res.arrayBuffer());
      const out = {};
      res.headers.forEach((value, name) => {
        out[name.toLowerCase()] = value;
      });
      return { status: res.status, headers: out, content };
    } catch (e) {
      if (e && (e.name === "TimeoutError" || e.name === "AbortError")) {
        throw new LatchkeyTimeoutError(0, "request_timeout", `latchkey at ${this.baseUrl} did not answer within ${this.timeoutMs} ms`);
      }
      const reason = e?.cause?.code || e?.cause?.message || e?.message || String(e);
      throw new LatchkeyConnectionError(0, "connection_error", `could not reach latchkey at ${this.baseUrl}: ${this.#redact(String(reason))}`);
    }
  }
}

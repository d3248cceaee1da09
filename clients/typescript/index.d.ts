// Types for latchkey-client (index.js).

export declare const VERSION: string;

export type JsonObject = { [key: string]: unknown };

/** An error reported by latchkey, or a failure to reach it. `status` is 0 when no answer came. */
export declare class LatchkeyError extends Error {
  constructor(status: number, code: string, message: string);
  readonly status: number;
  /** latchkey's error code, e.g. "not_connected". */
  readonly code: string;
}
/** No base URL, API key or user id: thrown before any request. */
export declare class ConfigurationError extends LatchkeyError {
  constructor(message: string);
}
/** invalid_api_key */
export declare class AuthenticationError extends LatchkeyError {}
/** not_found, unknown_provider */
export declare class NotFoundError extends LatchkeyError {}
/** not_connected */
export declare class NotConnectedError extends LatchkeyError {}
/** reauthorization_required: the user must connect again. */
export declare class ReauthorizationRequiredError extends LatchkeyError {}
/** provider_not_configured, provider_misconfigured */
export declare class ProviderConfigurationError extends LatchkeyError {}
/** invalid_request, body_too_large, validation_error (tools API 422). */
export declare class InvalidRequestError extends LatchkeyError {
  constructor(status: number, code: string, message: string, errors?: FieldError[]);
  readonly errors: FieldError[];
}
/** upstream_error, upstream_refused, upstream_response_too_large, upstream_timeout */
export declare class UpstreamError extends LatchkeyError {}
/** internal_error, temporarily_unavailable, or http_error for a bare 5xx. */
export declare class ServerError extends LatchkeyError {}
/** invalid_response: the answer was not JSON. */
export declare class InvalidResponseError extends LatchkeyError {}
/** request_timeout (no answer within timeoutMs) or session_timeout (waitForSession). */
export declare class LatchkeyTimeoutError extends LatchkeyError {}
/** connection_error: nothing answered at baseUrl. */
export declare class LatchkeyConnectionError extends LatchkeyError {}
/** mcp_http_error: the MCP server's own HTTP error (its 401 challenge, a 403 insufficient_scope). */
export declare class McpHttpError extends LatchkeyError {
  constructor(status: number, message: string, wwwAuthenticate: string | null, content: Uint8Array);
  readonly wwwAuthenticate: string | null;
  readonly content: Uint8Array;
}

/**
 * verifyWebhook refused a delivery: missing_header, invalid_timestamp, timestamp_out_of_tolerance,
 * invalid_signature or invalid_body. `status` is 0.
 */
export declare class WebhookVerificationError extends LatchkeyError {
  constructor(code: string, message: string);
}

export interface FieldError {
  loc: (string | number)[];
  msg: string;
  type: string;
}

export interface LatchkeyOptions {
  /** The user this client acts for; each user method also takes `{ userId }`. */
  userId?: string | null;
  /** Milliseconds each request may take (default 30000). */
  timeoutMs?: number;
  /** A fetch implementation (default: the global fetch). */
  fetch?: typeof fetch;
}

export interface AuthSession extends JsonObject {
  session_id: string;
  auth_url: string;
  expires_at: string;
  status: "pending";
  provider: string;
  user_id: string;
  scopes: string[];
}

export interface SessionStatus extends JsonObject {
  session_id: string;
  status: "pending" | "awaiting_confirmation" | "complete" | "error" | "expired";
  return_url?: string;
  confirm_by?: string;
  provider: string;
  user_id: string;
  scopes: string[];
  expires_at: string;
  created_at: string;
  error?: { code: string; message: string };
}

export interface Connection extends JsonObject {
  provider: string;
  scopes: string[];
  status: "active" | "reauthorization_required";
  account_id?: string;
  email?: string;
  expires_at?: string;
  connected_at: string;
  updated_at: string;
}

export interface ToolResult extends JsonObject {
  is_success: boolean;
  item_id: string;
  detail: string;
  error: JsonObject;
}

export interface Tool extends JsonObject {
  tool_id: string;
  name: string;
  server_url: string;
  resource: string;
  authorization_server: string;
  client_id: string;
  redirect_uris: string[];
  scopes: string[];
  connection: { status: "not_connected" | "connected" | "reauthorization_required"; [key: string]: unknown };
}

export interface InitiatedOAuth extends JsonObject {
  authorization_url: string;
  state: string;
  expires_at: string;
  item_id: string;
}

export type WebhookEventType =
  | "connection.created"
  | "connection.refresh_failed"
  | "connection.recovered"
  | "connection.deleted"
  | "session.failed"
  | "tool.connected"
  | "tool.reauthorization_required";

export interface Webhook extends JsonObject {
  webhook_id: string;
  url: string;
  events: WebhookEventType[];
  created_at: string;
}

/** createWebhook's answer: the only time the secret is shown. */
export interface CreatedWebhook extends Webhook {
  /** "whsec_" + base64 of 32 bytes: verifyWebhook's key. */
  secret: string;
}

/** A delivery that exhausted its retries. */
export interface WebhookFailure extends JsonObject {
  event_id: string;
  type: WebhookEventType;
  attempts: number;
  error: string;
  failed_at: string;
}

export interface WebhookWithFailures extends Webhook {
  /** The newest dead-lettered deliveries. */
  failures: WebhookFailure[];
}

/** A verified delivery's body. */
export interface WebhookEvent extends JsonObject {
  type: WebhookEventType;
  /** The event id (evt_...), also the webhook-id header: the same across retries. */
  id: string;
  timestamp: string;
  data: JsonObject;
}

/** A Headers, a Map, or a plain object such as Node's `req.headers` (names in any case). */
export type WebhookHeaders = Headers | Map<string, string> | Record<string, string | string[] | undefined>;

/**
 * Check a delivery's Standard Webhooks signature and timestamp and return its event. `body` is the
 * raw request body as received (not parsed JSON). `tolerance`: seconds webhook-timestamp may differ
 * from `now` (default 300); `now`: unix seconds or a Date (default the current time). Throws
 * WebhookVerificationError (ConfigurationError for a malformed secret).
 */
export declare function verifyWebhook(
  secret: string,
  headers: WebhookHeaders,
  body: string | Uint8Array | ArrayBuffer,
  options?: { tolerance?: number; now?: number | Date },
): WebhookEvent;

export interface JsonRpcMessage {
  jsonrpc: "2.0";
  method: string;
  id?: string | number;
  params?: unknown;
}

export interface JsonRpcReply extends JsonObject {
  jsonrpc: "2.0";
  id: string | number | null;
  result?: any;
  error?: { code: number; message: string; data?: unknown };
}

export type Params =
  | Record<string, string | number | boolean | null | undefined | (string | number | boolean)[]>
  | [string, string][]
  | URLSearchParams;

export interface ProxyOptions {
  userId?: string;
  params?: Params;
  json?: unknown;
  /** A raw body, or a record sent as a form. */
  data?: string | Uint8Array | ArrayBuffer | Record<string, string | number | boolean | (string | number | boolean)[]>;
  headers?: Record<string, string>;
  /** One of the provider's other API hosts from latchkey's catalogue. */
  apiHost?: string;
}

/** The provider's answer, passed through latchkey unchanged. */
export declare class ProxyResponse {
  constructor(status: number, headers: Record<string, string>, content: Uint8Array);
  readonly status: number;
  /** Lower-case names. */
  readonly headers: Record<string, string>;
  readonly content: Uint8Array;
  readonly ok: boolean;
  text(): string;
  json<T = any>(): T;
}

export declare class Latchkey {
  constructor(baseUrl: string, apiKey: string, options?: LatchkeyOptions);
  readonly baseUrl: string;
  userId: string | null;
  readonly timeoutMs: number;
  /** The user's connections by provider, loaded by initialize(); null before. */
  connections: Record<string, Connection> | null;

  /**
   * With returnUrl, the browser comes back there with session_id and a one-time connect_token; the
   * connection is usable only after confirmSession, called in your app's signed-in session for that
   * user (RFC 6749 §10.12).
   */
  createAuthSession(
    provider: string,
    options?: { userId?: string; scopes?: string[]; returnUrl?: string },
  ): Promise<AuthSession>;
  confirmSession(sessionId: string, connectToken: string): Promise<SessionStatus>;
  checkSessionStatus(sessionId: string): Promise<SessionStatus>;
  waitForSession(sessionId: string, options?: { timeoutMs?: number; intervalMs?: number }): Promise<SessionStatus>;
  initialize(): Promise<Connection[]>;
  listConnections(options?: { userId?: string }): Promise<Connection[]>;
  deleteConnection(
    provider: string,
    options?: { userId?: string },
  ): Promise<{ deleted: boolean; provider: string; revoked_upstream: boolean }>;

  /** Subscribe url to events (default: every event). The secret is shown only in this answer. */
  createWebhook(url: string, options?: { events?: WebhookEventType[] }): Promise<CreatedWebhook>;
  listWebhooks(): Promise<Webhook[]>;
  getWebhook(webhookId: string): Promise<WebhookWithFailures>;
  deleteWebhook(webhookId: string): Promise<{ deleted: boolean; webhook_id: string }>;

  proxyRequest(method: string, provider: string, path: string, options?: ProxyOptions): Promise<ProxyResponse>;
  proxyGet(provider: string, path: string, options?: ProxyOptions): Promise<ProxyResponse>;
  proxyPost(provider: string, path: string, options?: ProxyOptions): Promise<ProxyResponse>;
  proxyPut(provider: string, path: string, options?: ProxyOptions): Promise<ProxyResponse>;
  proxyPatch(provider: string, path: string, options?: ProxyOptions): Promise<ProxyResponse>;
  proxyDelete(provider: string, path: string, options?: ProxyOptions): Promise<ProxyResponse>;

  createTool(
    name: string,
    serverUrl: string,
    options?: { redirectUris?: string[]; scopes?: string[]; clientId?: string; clientSecret?: string },
  ): Promise<ToolResult & { tool: Tool }>;
  getTool(toolId: string): Promise<Tool>;
  deleteTool(toolId: string): Promise<ToolResult>;
  initiateOAuth(toolId: string, redirectUri: string, options?: { scopes?: string[] }): Promise<InitiatedOAuth>;
  completeOAuth(toolId: string, code: string, state: string, options?: { iss?: string }): Promise<ToolResult>;
  /** The server's JSON-RPC reply; null for a notification. */
  mcp(toolId: string, message: JsonRpcMessage): Promise<JsonRpcReply | null>;
}

// A browser for latchkey's authorize endpoint as `latchkey serve` runs it (the local development
// sign-in page, then the consent page): keeps cookies, follows latchkey's own redirects, fills the
// sign-in form with an email and approves consent, and stops at the first redirect that leaves
// latchkey (the client's redirect URI with code, state and iss). Used by steps.mjs and transport.mjs.

export class Browser {
  constructor(issuer, email) {
    this.issuer = issuer;
    this.origin = new URL(issuer).origin;
    this.email = email;
    this.cookies = new Map();
    // What each authorization showed: "sign-in", "consent" (with the scopes listed), or nothing.
    this.pages = [];
  }

  async request(url, init = {}) {
    const headers = { ...(init.headers || {}) };
    if (this.cookies.size) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    const res = await fetch(url, { ...init, headers, redirect: "manual" });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const i = pair.indexOf("=");
      this.cookies.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
    }
    return res;
  }

  // Open an authorization URL and go through sign-in and consent; returns the client's redirect
  // URL and the pages seen on the way.
  async authorize(authorizationUrl) {
    const seen = [];
    let res = await this.request(String(authorizationUrl));
    for (let i = 0; i < 8; i++) {
      if (res.status === 302 || res.status === 303) {
        const next = new URL(res.headers.get("location"), this.origin);
        if (next.origin !== this.origin || !next.pathname.startsWith(new URL(this.issuer).pathname)) {
          this.pages.push(seen);
          return { redirect: next, pages: seen };
        }
        res = await this.request(next.href);
        continue;
      }
      const html = await res.text();
      if (res.status !== 200) throw new Error(`${res.url || authorizationUrl}: ${res.status} ${html.slice(0, 500)}`);
      const request = hidden(html, "request");
      if (html.includes('type="email"')) {
        seen.push({ page: "sign-in" });
        res = await this.request(`${this.issuer}/callback`, form({ request, email: this.email }));
      } else {
        seen.push({ page: "consent", scopes: [...html.matchAll(/<code>([^<]+)<\/code>/g)].map((m) => m[1]) });
        res = await this.request(`${this.issuer}/consent`, form({ request, csrf: hidden(html, "csrf"), decision: "approve" }));
      }
    }
    throw new Error("the authorization did not come back to the client");
  }
}

function hidden(html, name) {
  const m = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
  if (!m) throw new Error(`no ${name} field in ${html.slice(0, 500)}`);
  return m[1];
}

function form(fields) {
  return {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields).toString(),
  };
}

// A fetch that records what the SDK sends to the authorization server: registration bodies,
// token request forms (grant type, scope, resource; never the secrets) and their answers' scope.
export function recordingFetch(log, issuer) {
  return async (url, init = {}) => {
    const href = String(url instanceof Request ? url.url : url);
    const res = await fetch(url, init);
    if ((res.status === 401 || res.status === 403) && res.headers.get("www-authenticate")) {
      // The last challenge, as the app sees it (the SDK's errors do not carry it).
      const header = res.headers.get("www-authenticate");
      log.lastChallenge = { status: res.status, scope: header.match(/scope="([^"]*)"/)?.[1] ?? null, header };
    }
    if (!href.startsWith(issuer)) return res;
    const path = new URL(href).pathname.slice(new URL(issuer).pathname.length);
    if (path === "/register" && init.body) {
      const body = JSON.parse(String(init.body));
      const answer = await res.clone().json().catch(() => ({}));
      log.push({ endpoint: "register", status: res.status, requested_scope: body.scope ?? null, grant_types: body.grant_types ?? null, registered_scope: answer.scope ?? null, error: answer.error ?? null });
    } else if (path === "/token" && init.body) {
      const f = new URLSearchParams(String(init.body));
      const answer = await res.clone().json().catch(() => ({}));
      log.push({ endpoint: "token", status: res.status, grant_type: f.get("grant_type"), requested_scope: f.get("scope"), resource: f.get("resource"), granted_scope: answer.scope ?? null, error: answer.error ?? null });
    }
    return res;
  };
}

// The test's control endpoint: move latchkey's clock past the access token's lifetime.
export async function advanceClock() {
  const control = process.env.LATCHKEY_TEST_CONTROL;
  if (!control) throw new Error("LATCHKEY_TEST_CONTROL is not set");
  const res = await fetch(`${control}/advance`, { method: "POST" });
  if (!res.ok) throw new Error(`advance: ${res.status}`);
}

// The scope parameter of an authorization URL.
export function scopeOf(authorizationUrl) {
  return new URL(String(authorizationUrl)).searchParams.get("scope");
}

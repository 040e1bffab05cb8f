// The API module: every call to the server goes through `request`.
// The access token lives in this module's memory only. The refresh token is an HttpOnly,
// SameSite=Strict cookie that only the refresh route receives, so page scripts never see
// it and a reload (or a second tab) resumes the same session with one refresh. The access
// token is refreshed shortly before it expires, and once more if the server still answers
// 401 `invalid_token`. Every failure becomes an ApiError whose message is the server's
// problem+json `detail`, with field `errors` attached.

const REFRESH_MARGIN_MS = 30_000;

const SIGNED_IN_COOKIE = "banking_signed_in";
const REFRESH_LOCK = "banking-refresh";

let tokens = null; // { access, refreshAt }
let user = null; // what we know about the signed-in user: { email, ... }
let refreshing = null;
let refreshTimer = null;
const listeners = new Set();

export class ApiError extends Error {
  constructor({ status, code, title = "", detail, requestId = null, errors = [], body = {} }) {
    super(detail || title || `Request failed (${status}).`);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.title = title;
    this.requestId = requestId;
    this.errors = errors;
    this.body = body;
  }
}

export function onAuthChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function notify(reason) {
  for (const listener of listeners) listener(isSignedIn(), reason);
}

export function isSignedIn() {
  return tokens !== null;
}

export function currentUser() {
  return user;
}

function storeTokens(body) {
  const lifetimeMs = Math.max(0, Number(body.expires_in) * 1000);
  const leadMs = Math.min(REFRESH_MARGIN_MS, lifetimeMs / 2);
  tokens = {
    access: body.access_token,
    refreshAt: Date.now() + lifetimeMs - leadMs,
  };
  clearTimeout(refreshTimer);
  // Refresh in the background too, so an idle tab keeps a live session.
  refreshTimer = setTimeout(() => refresh().catch(() => {}), lifetimeMs - leadMs);
}

// `reason` is "logout" when the user asked, "expired" when the server ended the session.
export function forgetSession(reason = "logout") {
  const wasSignedIn = isSignedIn();
  tokens = null;
  user = null;
  clearTimeout(refreshTimer);
  document.cookie = `${SIGNED_IN_COOKIE}=; Max-Age=0; Path=/; Secure; SameSite=Strict`;
  if (wasSignedIn) notify(reason);
}

function hasSessionCookie() {
  return document.cookie.split("; ").includes(`${SIGNED_IN_COOKIE}=1`);
}

// A refresh token works once, so two tabs refreshing with the same cookie at once would
// look like token theft to the server and end the session: tabs take turns (Web Locks).
function withRefreshLock(task) {
  if (navigator.locks?.request) return navigator.locks.request(REFRESH_LOCK, task);
  return task();
}

function refreshByCookie() {
  return withRefreshLock(() => send("POST", "/v1/auth/refresh", {
    credentials: "same-origin", headers: { "X-Requested-With": "banking-web" },
  }));
}

// One refresh at a time: a refresh token works once, so two parallel refreshes would
// look like token theft to the server and end the session.
function refresh() {
  if (!tokens) return Promise.reject(sessionEnded());
  if (!refreshing) {
    refreshing = refreshByCookie()
      .then((body) => {
        if (tokens) storeTokens(body);
      })
      .catch((error) => {
        if (error.status === 401) forgetSession("expired");
        throw error.status === 401 ? sessionEnded() : error;
      })
      .finally(() => {
        refreshing = null;
      });
  }
  return refreshing;
}

function sessionEnded() {
  return new ApiError({
    status: 401,
    code: "session_ended",
    detail: "Your session has ended. Please log in again.",
  });
}

async function send(method, path, {
  body, query, headers = {}, accept = "application/json", credentials = "omit",
} = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  const init = { method, headers: { Accept: accept, ...headers }, credentials };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    throw new ApiError({
      status: 0,
      code: "network_error",
      detail: "The bank could not be reached. Check your connection and try again.",
    });
  }
  if (!response.ok) throw await errorFrom(response);
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  if (accept === "application/json" && type.includes("json")) return response.json();
  return accept === "application/json" ? response.text() : response.blob();
}

async function errorFrom(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    body = {};
  }
  return new ApiError({
    status: response.status,
    code: body.code || `http_${response.status}`,
    title: body.title,
    detail: body.detail || friendlyStatus(response.status),
    requestId: body.request_id || response.headers.get("x-request-id"),
    errors: Array.isArray(body.errors) ? body.errors : [],
    body,
  });
}

function friendlyStatus(status) {
  if (status === 429) return "Too many requests. Please wait a moment and try again.";
  if (status >= 500) return "The bank had a problem handling this request. Please try again.";
  return `The request failed (${status}).`;
}

// An authenticated call. `idempotencyKey` is sent for money-moving POSTs; reuse the same
// key to retry safely.
export async function request(method, path, options = {}) {
  if (!tokens) throw sessionEnded();
  if (Date.now() >= tokens.refreshAt) await refresh();
  const { idempotencyKey, ...rest } = options;
  const attempt = () => send(method, path, {
    ...rest,
    headers: {
      Authorization: `Bearer ${tokens.access}`,
      ...(idempotencyKey ? { "Idempotency-Key": idempotencyKey } : {}),
    },
  });
  try {
    return await attempt();
  } catch (error) {
    if (error.status !== 401 || error.code !== "invalid_token" || !tokens) throw error;
    await refresh();
    return attempt();
  }
}

export function newIdempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// ---- the calls, named as in the API contract

// The bank's public details ({ bank_name, time_zone }), readable before anyone logs in;
// asked once per page load (again only after a failure).
let metaAnswer = null;
export function meta() {
  metaAnswer ??= send("GET", "/v1/meta").catch((error) => {
    metaAnswer = null;
    throw error;
  });
  return metaAnswer;
}

export function signup(profile) {
  return send("POST", "/v1/auth/signup", { body: profile });
}

async function loadUser(fallback) {
  user = fallback;
  try {
    user = { ...fallback, ...(await request("GET", "/v1/auth/me")) };
  } catch {
    // /v1/auth/me is optional for the UI: the email typed at login is enough to greet.
  }
}

export async function login(email, password) {
  const body = await send("POST", "/v1/auth/login", {
    body: { email, password, refresh_cookie: true }, credentials: "same-origin",
  });
  storeTokens(body);
  await loadUser({ email });
  notify("login");
  return user;
}

// After a reload or in a new tab: continue the session the refresh cookie belongs to.
// Resolves to whether the user is signed in; never throws.
export async function resume() {
  if (tokens || !hasSessionCookie()) return isSignedIn();
  try {
    storeTokens(await refreshByCookie());
  } catch {
    forgetSession("logout");
    return false;
  }
  await loadUser({});
  notify("resume");
  return true;
}

export async function logout({ everywhere = false } = {}) {
  try {
    // With the cookies, so that the answer can clear the refresh cookie too.
    if (tokens) {
      await request("POST", everywhere ? "/v1/auth/logout-all" : "/v1/auth/logout",
        { credentials: "same-origin" });
    }
  } finally {
    forgetSession();
  }
}

export const sessions = {
  list: () => request("GET", "/v1/auth/sessions"),
  revoke: (id) => request("DELETE", `/v1/auth/sessions/${encodeURIComponent(id)}`),
};

const enc = encodeURIComponent;

export const accounts = {
  list: () => request("GET", "/v1/accounts"),
  get: (id) => request("GET", `/v1/accounts/${enc(id)}`),
  open: (body) => request("POST", "/v1/accounts", { body }),
  balance: (id) => request("GET", `/v1/accounts/${enc(id)}/balance`),
  lookup: (number) => request("GET", "/v1/accounts/lookup", { query: { number } }),
  transactions: (id, query) => request("GET", `/v1/accounts/${enc(id)}/transactions`, { query }),
  balanceHistory: (id, query) => request("GET", `/v1/accounts/${enc(id)}/balance-history`, { query }),
  rename: (id, nickname) => request("PATCH", `/v1/accounts/${enc(id)}`, { body: { nickname } }),
  close: (id) => request("POST", `/v1/accounts/${enc(id)}/close`),
};

// Money-moving calls take the Idempotency-Key of the attempt: a retry of the same attempt
// (double click, network failure) reuses it, so the bank moves the money at most once.
// The bank refuses a money-moving POST without a key (400 idempotency_key_required), so a
// call made without one gets a fresh key of its own.
const keyOf = (idempotencyKey) => idempotencyKey || newIdempotencyKey();
export const money = {
  deposit: (id, body, idempotencyKey) =>
    request("POST", `/v1/accounts/${enc(id)}/deposits`, { body, idempotencyKey: keyOf(idempotencyKey) }),
  withdraw: (id, body, idempotencyKey) =>
    request("POST", `/v1/accounts/${enc(id)}/withdrawals`, { body, idempotencyKey: keyOf(idempotencyKey) }),
  transfer: (body, idempotencyKey) =>
    request("POST", "/v1/transfers", { body, idempotencyKey: keyOf(idempotencyKey) }),
};

export const profile = {
  me: () => request("GET", "/v1/auth/me"),
  changePassword: (currentPassword, newPassword) => request("POST", "/v1/auth/password",
    { body: { current_password: currentPassword, new_password: newPassword } }),
  holder: () => request("GET", "/v1/account-holders/me"),
  update: (body) => request("PATCH", "/v1/account-holders/me", { body }),
};

export const cards = {
  list: () => request("GET", "/v1/cards"),
  issue: (accountId, type, cardholderName = null) =>
    request("POST", `/v1/accounts/${enc(accountId)}/cards`,
      { body: cardholderName ? { type, cardholder_name: cardholderName } : { type } }),
  freeze: (id) => request("POST", `/v1/cards/${enc(id)}/freeze`),
  cancel: (id) => request("POST", `/v1/cards/${enc(id)}/cancel`),
  unfreeze: (id) => request("POST", `/v1/cards/${enc(id)}/unfreeze`),
  limits: (id, body) => request("PATCH", `/v1/cards/${enc(id)}/limits`, { body }),
  authorizations: (id, query) => request("GET", `/v1/cards/${enc(id)}/authorizations`, { query }),
};

export const statements = {
  list: (accountId, query) => request("GET", `/v1/accounts/${enc(accountId)}/statements`, { query }),
  get: (accountId, month) =>
    request("GET", `/v1/accounts/${enc(accountId)}/statements/${enc(month)}`,
      { query: { format: "json" } }),
  download: (accountId, month, format) =>
    request("GET", `/v1/accounts/${enc(accountId)}/statements/${enc(month)}`,
      { query: { format }, accept: format === "pdf" ? "application/pdf" : "text/csv" }),
};

export const staff = {
  accounts: (query) => request("GET", "/v1/admin/accounts", { query }),
  account: (id) => request("GET", `/v1/admin/accounts/${enc(id)}`),
  holders: (query) => request("GET", "/v1/admin/account-holders", { query }),
  holder: (id) => request("GET", `/v1/admin/account-holders/${enc(id)}`),
  freeze: (id, reason) =>
    request("POST", `/v1/admin/accounts/${enc(id)}/freeze`, { body: reason ? { reason } : {} }),
  unfreeze: (id, reason) =>
    request("POST", `/v1/admin/accounts/${enc(id)}/unfreeze`, { body: reason ? { reason } : {} }),
  // 200 with the account (applied at once) or 202 with a `daily_limit_raise` approval.
  setDailyLimit: (id, dailyOutgoingLimit, reason) =>
    request("PATCH", `/v1/admin/accounts/${enc(id)}/limits`,
      { body: { daily_outgoing_limit: dailyOutgoingLimit, reason } }),
  audit: (query) => request("GET", "/v1/admin/audit", { query }),
  entries: (query) => request("GET", "/v1/admin/transactions", { query }),
};

export function isStaff() {
  return user?.role === "support" || user?.role === "admin";
}

export function isAdmin() {
  return user?.role === "admin";
}

// Items of a list answer, whether `{items, next_cursor}` or a bare array.
export function itemsOf(body) {
  return Array.isArray(body) ? body : body?.items ?? [];
}

// A long-lived authenticated GET (the event stream): the raw Response, so the caller reads
// its body as it arrives. Refreshes the access token first when it is due.
export async function openStream(path, { headers = {}, signal } = {}) {
  if (!tokens) throw sessionEnded();
  if (Date.now() >= tokens.refreshAt) await refresh();
  const response = await fetch(new URL(path, window.location.origin), {
    headers: { Accept: "text/event-stream", Authorization: `Bearer ${tokens.access}`, ...headers },
    credentials: "omit",
    signal,
  });
  if (!response.ok) throw await errorFrom(response);
  return response;
}

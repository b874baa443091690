// sessionward.js: the browser client of the sessionward session protocol.
//
// An ES module without dependencies. It wraps window.fetch for calls to your API:
// credentials are sent, the anti-CSRF token goes back in the `anti-csrf` header, and a
// response with the session-expired status triggers ONE refresh (one per browser, across
// tabs) followed by ONE retry of the request.
//
//   import * as sessionward from "/sessionward/sessionward.js";
//   sessionward.init({ apiBase: "", refreshPath: "/session/refresh" });
//   const response = await sessionward.fetch("/api/me");
//
// What it keeps in the browser (the layout of the 2020 SuperTokens frontend, docs/client.md):
// - cookie `sIRTFrontend`: the idRefresh token from the `id-refresh-token` response header,
//   expiring with it. Its presence means "a session exists"; a new value means "someone
//   refreshed". Without it, a session-expired answer is returned as is, with no refresh.
// - cookie `sFrontToken`: the raw `front-token` header (base64 JSON {uid, ate, up}).
// - localStorage `sessionward.antiCsrf:<apiBase>`: the anti-CSRF token with the idRefresh
//   value it belongs to.
// The frontend cookies are written by this script on the page's host (path /), never by
// the server, and carry no secret: the session cookies themselves stay HttpOnly.
// With init({ cookieDomain: ".example.com" }) the two cookies are written for that domain
// instead, and the anti-CSRF record moves from localStorage to a third cookie, `sAntiCsrf`,
// so that pages on every sub-domain share them (see who signed in, send the token).

const ID_REFRESH_COOKIE = "sIRTFrontend";
const FRONT_TOKEN_COOKIE = "sFrontToken";
const ANTI_CSRF_COOKIE = "sAntiCsrf";
const ANTI_CSRF_STORAGE_PREFIX = "sessionward.antiCsrf:";
const LOCK_PREFIX = "sessionward.refreshLock:";
const ID_REFRESH_HEADER = "id-refresh-token";
const ANTI_CSRF_HEADER = "anti-csrf";
const FRONT_TOKEN_HEADER = "front-token";
const STORAGE_LOCK_TTL_MS = 10000;
const STORAGE_LOCK_WAIT_MS = 15000;
const ANTI_CSRF_CATCH_UP_MS = 1000;
const FRONT_TOKEN_MAX_AGE_S = 100 * 24 * 3600;

/** The version of this client. */
export const VERSION = "0.1.0";

const DEFAULTS = Object.freeze({
  apiBase: "",
  refreshPath: "/session/refresh",
  sessionExpiredStatusCode: 401,
  signOutPath: null,
  autoAddCredentials: true,
  onEvent: null,
  cookieDomain: null,
});

let config = { ...DEFAULTS };
// The refresh running in this tab (shared by every call that got the expired status).
let inflightRefresh = null;

/**
 * Configure the client. May be called again: later calls replace the configuration.
 *
 * @param {object} [options]
 * @param {string} [options.apiBase=""] origin (and optional path prefix) of the API, e.g.
 *   "http://127.0.0.1:8001"; "" means the page's own origin.
 * @param {string} [options.refreshPath="/session/refresh"] the backend's refresh_api_path.
 * @param {number} [options.sessionExpiredStatusCode=401] the backend's session_expired_status_code.
 * @param {string|null} [options.signOutPath=null] an API path that ends the session (POST).
 * @param {boolean} [options.autoAddCredentials=true] send cookies (credentials: "include")
 *   unless a call sets `credentials` itself.
 * @param {function|null} [options.onEvent=null] called with {type} objects:
 *   "refresh-started", "refreshed", "session-expired", "signed-out".
 * @param {string|null} [options.cookieDomain=null] share the frontend state with every
 *   sub-domain, e.g. ".example.com": the frontend cookies get `domain=<cookieDomain>` and the
 *   anti-CSRF token lives in the cookie `sAntiCsrf` instead of localStorage. null: host-only
 *   cookies and localStorage. The page's host name must be within the domain.
 * @throws {Error} when cookieDomain is not a domain this page can write cookies for.
 */
export function init(options = {}) {
  const merged = { ...DEFAULTS, ...options };
  merged.apiBase = String(merged.apiBase || "").replace(/\/+$/, "");
  merged.refreshPath = "/" + String(merged.refreshPath || DEFAULTS.refreshPath).replace(/^\/+/, "");
  merged.sessionExpiredStatusCode = Number(merged.sessionExpiredStatusCode);
  merged.cookieDomain = checkedCookieDomain(merged.cookieDomain);
  config = merged;
  if (config.cookieDomain) dropShadowingCopies();
}

function checkedCookieDomain(value) {
  if (value === null || value === undefined) return null;
  // Written into the cookie string as is: nothing that could end or add an attribute.
  if (typeof value !== "string" || value.replace(/^\./, "") === "" || /[;,=\s\x00-\x1f\x7f]/.test(value)) {
    throw new Error(`sessionward: cookieDomain must be a domain such as ".example.com", not ${shown(value)}`);
  }
  // Without a page (no location) nothing is written, so there is nothing to check against.
  if (typeof location !== "undefined" && !domainMatches(String(location.hostname), value)) {
    throw new Error(
      `sessionward: cookieDomain ${shown(value)} does not cover this page's host ${shown(location.hostname)}`,
    );
  }
  return value;
}

/** RFC 6265 domain-match: whether a page on `host` can set cookies for `domain` at all. */
function domainMatches(host, domain) {
  const hostName = host.toLowerCase();
  const bare = domain.replace(/^\./, "").toLowerCase();
  if (hostName === bare) return true;
  const isAddress = /^\d+\.\d+\.\d+\.\d+$/.test(hostName) || hostName.startsWith("[");
  return !isAddress && hostName.endsWith("." + bare);
}

function shown(value) {
  try {
    return typeof value === "string" ? JSON.stringify(value) : String(value);
  } catch {
    return typeof value;
  }
}

// -- small storage helpers ------------------------------------------------------------------

function readCookie(name) {
  if (typeof document === "undefined") return null;
  for (const part of document.cookie.split(";")) {
    const index = part.indexOf("=");
    if (index < 0) continue;
    if (part.slice(0, index).trim() === name) {
      try {
        return decodeURIComponent(part.slice(index + 1).trim());
      } catch {
        return null;
      }
    }
  }
  return null;
}

function countCookies(name) {
  if (typeof document === "undefined") return 0;
  const named = (part) => part.includes("=") && part.slice(0, part.indexOf("=")).trim() === name;
  return document.cookie.split(";").filter(named).length;
}

/**
 * With cookieDomain: a host-only cookie this page wrote before the option was set hides the
 * site-wide cookie of the same name (document.cookie lists the older first), so it goes when
 * both exist. A lone host-only copy stays usable until the next write replaces it.
 */
function dropShadowingCopies() {
  for (const name of [ID_REFRESH_COOKIE, FRONT_TOKEN_COOKIE, ANTI_CSRF_COOKIE]) {
    if (countCookies(name) > 1) document.cookie = cookieText(name, "", new Date(0), null);
  }
}

function cookieText(name, value, expires, domain) {
  const secure = typeof location !== "undefined" && location.protocol === "https:" ? "; secure" : "";
  const scope = domain ? `; domain=${domain}` : "";
  return (
    `${name}=${encodeURIComponent(value)}; expires=${expires.toUTCString()}; path=/${scope}; samesite=lax${secure}`
  );
}

function writeCookie(name, value, expires) {
  if (typeof document === "undefined") return;
  if (config.cookieDomain) {
    // Any host-only copy goes first: it would hide the new cookie (see dropShadowingCopies).
    document.cookie = cookieText(name, "", new Date(0), null);
    document.cookie = cookieText(name, value, expires, config.cookieDomain);
  } else {
    document.cookie = cookieText(name, value, expires, null);
  }
}

/** Delete the cookie (with cookieDomain: the Domain cookie and any host-only copy). */
function deleteCookie(name) {
  writeCookie(name, "", new Date(0));
}

function frontCookieExpiry() {
  return new Date(Date.now() + FRONT_TOKEN_MAX_AGE_S * 1000);
}

function storage() {
  try {
    return typeof localStorage === "undefined" ? null : localStorage;
  } catch {
    return null; // storage disabled (privacy settings, sandboxed frame)
  }
}

function storageKeySuffix() {
  if (config.apiBase) return config.apiBase;
  return typeof location === "undefined" ? "" : location.origin;
}

function antiCsrfStorageKey() {
  return ANTI_CSRF_STORAGE_PREFIX + storageKeySuffix();
}

// -- protocol state -------------------------------------------------------------------------

function readIdRefresh() {
  const value = readCookie(ID_REFRESH_COOKIE);
  return value ? value : null;
}

/** The stored anti-CSRF record (JSON): cookie sAntiCsrf with cookieDomain, else localStorage. */
function readAntiCsrfText() {
  if (config.cookieDomain) return readCookie(ANTI_CSRF_COOKIE);
  const store = storage();
  return store ? store.getItem(antiCsrfStorageKey()) : null;
}

function readAntiCsrfRecord() {
  try {
    const record = JSON.parse(readAntiCsrfText() || "null");
    if (record && typeof record.token === "string") return record;
  } catch {
    // unreadable record: behave as if none were stored
  }
  return null;
}

function readAntiCsrf() {
  const record = readAntiCsrfRecord();
  return record !== null && record.idRefresh === readIdRefresh() ? record.token : null;
}

/**
 * Wait (at most ANTI_CSRF_CATCH_UP_MS) while the stored anti-CSRF token belongs to an older
 * idRefresh value than the current one. A refresh in another tab writes the idRefresh
 * cookie and then the token; the cookie is visible here at once, but the browser may hand
 * this tab the new localStorage value a little later (Chromium propagates localStorage
 * between renderer processes asynchronously). Sending in that window would go without the
 * anti-CSRF header and be refused.
 */
async function antiCsrfCaughtUp() {
  const deadline = Date.now() + ANTI_CSRF_CATCH_UP_MS;
  for (;;) {
    const record = readAntiCsrfRecord();
    const idRefresh = readIdRefresh();
    if (record === null || idRefresh === null || record.idRefresh === idRefresh) return;
    if (Date.now() >= deadline) return;
    await sleep(5);
  }
}

function writeAntiCsrf(token) {
  const text = token === null ? null : JSON.stringify({ token, idRefresh: readIdRefresh() });
  if (!config.cookieDomain) {
    storeAntiCsrfText(text);
    return;
  }
  if (text === null) deleteCookie(ANTI_CSRF_COOKIE);
  else writeCookie(ANTI_CSRF_COOKIE, text, frontCookieExpiry());
  storeAntiCsrfText(null); // a record kept in localStorage before cookieDomain was set
}

function storeAntiCsrfText(text) {
  const store = storage();
  if (!store) return;
  try {
    if (text === null) store.removeItem(antiCsrfStorageKey());
    else store.setItem(antiCsrfStorageKey(), text);
  } catch {
    // quota or privacy errors: the server will answer "try refresh" and we retry
  }
}

function readFrontToken() {
  const raw = readCookie(FRONT_TOKEN_COOKIE);
  if (!raw) return null;
  try {
    const text = atob(raw);
    // The server escapes non-ASCII as \uXXXX, so atob's Latin-1 output is plain JSON.
    const decoded = JSON.parse(text);
    return decoded && typeof decoded === "object" ? decoded : null;
  } catch {
    return null;
  }
}

function clearLocalState() {
  deleteCookie(ID_REFRESH_COOKIE);
  deleteCookie(FRONT_TOKEN_COOKIE);
  writeAntiCsrf(null);
}

function emit(type, detail = {}) {
  if (typeof config.onEvent !== "function") return;
  try {
    config.onEvent({ type, ...detail });
  } catch (error) {
    console.error("sessionward: onEvent handler failed", error);
  }
}

/** Apply the protocol headers of `response` to the local state (WEB 4.4 algorithm). */
function absorb(response, { expired }) {
  const headers = response.headers;
  const idRefresh = headers.get(ID_REFRESH_HEADER);
  if (idRefresh !== null) {
    if (idRefresh.trim() === "remove") {
      deleteCookie(ID_REFRESH_COOKIE);
    } else {
      const separator = idRefresh.lastIndexOf(";");
      const value = separator < 0 ? idRefresh : idRefresh.slice(0, separator);
      const expiry = separator < 0 ? NaN : Number(idRefresh.slice(separator + 1));
      const expires = Number.isFinite(expiry) ? new Date(expiry) : frontCookieExpiry();
      if (value) writeCookie(ID_REFRESH_COOKIE, value.trim(), expires);
    }
  }
  if (!expired) {
    const frontToken = headers.get(FRONT_TOKEN_HEADER);
    if (frontToken !== null) {
      if (frontToken.trim() === "remove") deleteCookie(FRONT_TOKEN_COOKIE);
      else writeCookie(FRONT_TOKEN_COOKIE, frontToken.trim(), frontCookieExpiry());
    }
    const antiCsrf = headers.get(ANTI_CSRF_HEADER);
    if (antiCsrf !== null && antiCsrf.trim() !== "") writeAntiCsrf(antiCsrf.trim());
    // A new session or refresh without an anti-CSRF token: the server does not use them
    // (any more), so a stored one is stale for good; no call should wait for its successor.
    else if (idRefresh !== null && idRefresh.trim() !== "remove") writeAntiCsrf(null);
  }
  if (readIdRefresh() === null) {
    // No session (any more): nothing that belonged to one may linger.
    deleteCookie(FRONT_TOKEN_COOKIE);
    writeAntiCsrf(null);
  }
}

// -- locking --------------------------------------------------------------------------------

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function randomId() {
  if (typeof crypto !== "undefined" && crypto.randomUUID) return crypto.randomUUID();
  return `${Date.now()}-${Math.random().toString(36).slice(2)}`;
}

/** Run `task` holding the browser-wide refresh lock of this apiBase. */
async function withRefreshLock(task) {
  const name = LOCK_PREFIX + storageKeySuffix();
  if (typeof navigator !== "undefined" && navigator.locks && typeof navigator.locks.request === "function") {
    return navigator.locks.request(name, { mode: "exclusive" }, () => task());
  }
  return withStorageLock(name, task);
}

/**
 * Fallback when the Web Locks API is missing (plain-http origins other than localhost):
 * a lock record in localStorage with an expiry, so a tab that died holding it cannot block
 * the others for longer than STORAGE_LOCK_TTL_MS. After STORAGE_LOCK_WAIT_MS the task runs
 * anyway: it re-checks the idRefresh value first, so at worst two refreshes overlap, which
 * the server's idempotent refresh absorbs.
 */
async function withStorageLock(name, task) {
  const store = storage();
  if (!store) return task();
  const id = randomId();
  const deadline = Date.now() + STORAGE_LOCK_WAIT_MS;
  let owned = false;
  while (!owned && Date.now() < deadline) {
    let current = null;
    try {
      current = JSON.parse(store.getItem(name) || "null");
    } catch {
      current = null;
    }
    if (!current || typeof current.expires !== "number" || current.expires < Date.now()) {
      try {
        store.setItem(name, JSON.stringify({ id, expires: Date.now() + STORAGE_LOCK_TTL_MS }));
      } catch {
        return task();
      }
      await sleep(25); // let a racing tab's write land, then see who won
      try {
        owned = JSON.parse(store.getItem(name) || "null")?.id === id;
      } catch {
        owned = false;
      }
      if (owned) break;
    }
    await sleep(40 + Math.random() * 60);
  }
  try {
    return await task();
  } finally {
    if (owned) {
      try {
        if (JSON.parse(store.getItem(name) || "null")?.id === id) store.removeItem(name);
      } catch {
        // nothing to release
      }
    }
  }
}

// -- refresh --------------------------------------------------------------------------------

/** Error thrown when the refresh endpoint answers neither success nor session-expired. */
export class RefreshError extends Error {
  constructor(message, response) {
    super(message);
    this.name = "RefreshError";
    this.response = response;
    this.status = response ? response.status : undefined;
  }
}

async function postRefresh() {
  emit("refresh-started");
  const headers = new Headers();
  const antiCsrf = readAntiCsrf();
  if (antiCsrf) headers.set(ANTI_CSRF_HEADER, antiCsrf);
  const response = await window.fetch(config.apiBase + config.refreshPath, {
    method: "POST",
    credentials: "include",
    headers,
  });
  const expired = response.status === config.sessionExpiredStatusCode;
  absorb(response, { expired });
  if (expired) {
    clearLocalState(); // the session is gone (revoked, expired or stolen)
    emit("session-expired");
    return "expired";
  }
  if (response.status < 200 || response.status >= 300) {
    throw new RefreshError(`sessionward: refresh answered ${response.status}`, response);
  }
  emit("refreshed");
  return "retry";
}

/**
 * Decide, for a call whose request was sent with idRefresh value `sentWith` and that got the
 * session-expired status, whether to retry it ("retry") or give up ("expired").
 */
function afterExpired(sentWith) {
  const now = readIdRefresh();
  if (sentWith === null) {
    // No session when the request left: never refresh; retry only if one appeared since.
    return Promise.resolve(now !== null ? "retry" : "expired");
  }
  if (now === null) return Promise.resolve("expired");
  if (now !== sentWith) return Promise.resolve("retry"); // refreshed meanwhile (this tab or another)
  if (inflightRefresh === null) {
    inflightRefresh = withRefreshLock(async () => {
      const current = readIdRefresh();
      if (current === null) return "expired";
      if (current !== sentWith) return "retry"; // another tab refreshed while we waited
      return postRefresh();
    }).finally(() => {
      inflightRefresh = null;
    });
  }
  return inflightRefresh;
}

/**
 * Refresh the session now (one refresh at a time across tabs). Resolves to whether a
 * session exists afterwards.
 */
export async function attemptRefreshingSession() {
  const sentWith = readIdRefresh();
  if (sentWith === null) return false;
  await afterExpired(sentWith);
  return readIdRefresh() !== null;
}

// -- fetch ----------------------------------------------------------------------------------

function resolveInput(input) {
  if (typeof input === "string" && input.startsWith("/") && !input.startsWith("//")) {
    return config.apiBase + input;
  }
  return input;
}

function send(input, options, isRequest) {
  const headers = new Headers(options.headers ?? (isRequest ? input.headers : undefined));
  const antiCsrf = readAntiCsrf();
  if (antiCsrf) headers.set(ANTI_CSRF_HEADER, antiCsrf);
  const final = { ...options, headers };
  if (config.autoAddCredentials && options.credentials === undefined) final.credentials = "include";
  return window.fetch(isRequest ? input.clone() : input, final);
}

/**
 * `window.fetch` for calls to the API: adds credentials and the anti-CSRF header, and on
 * the session-expired status refreshes once (shared with every other call, across tabs) and
 * retries once. A path starting with "/" is resolved against `apiBase`. Resolves to the
 * final Response: the retry's, or the original session-expired one when the session is gone.
 */
export async function fetch(input, options = {}) {
  const isRequest = typeof Request !== "undefined" && input instanceof Request;
  const target = isRequest ? input.clone() : resolveInput(input);
  let retried = false;
  for (;;) {
    await antiCsrfCaughtUp();
    const sentWith = readIdRefresh();
    const response = await send(target, options, isRequest);
    const expired = response.status === config.sessionExpiredStatusCode;
    absorb(response, { expired });
    if (!expired || retried) return response;
    const outcome = await afterExpired(sentWith);
    if (outcome !== "retry") return response;
    retried = true;
  }
}

// -- session information ----------------------------------------------------------------------

/** Resolves to whether a session exists (the `sIRTFrontend` cookie is present). */
export async function doesSessionExist() {
  return readIdRefresh() !== null;
}

/** Resolves to the user id of the session (from the front-token), or null without one. */
export async function getUserId() {
  if (readIdRefresh() === null) return null;
  const token = readFrontToken();
  return token && typeof token.uid === "string" ? token.uid : null;
}

/**
 * Resolves to the JWT payload of the latest access token (from the front-token), or null
 * without a session. It is the payload as of the last response that carried a front-token:
 * call attemptRefreshingSession() first if getAccessTokenExpiry() is in the past.
 */
export async function getJWTPayload() {
  if (readIdRefresh() === null) return null;
  const token = readFrontToken();
  return token && token.up && typeof token.up === "object" ? token.up : null;
}

/** Resolves to the access token's expiry in ms since the epoch, or null without a session. */
export async function getAccessTokenExpiry() {
  if (readIdRefresh() === null) return null;
  const token = readFrontToken();
  return token && typeof token.ate === "number" ? token.ate : null;
}

/**
 * End the session: POST to `signOutPath` (when configured, through fetch() so an expired
 * access token is refreshed first), then clear the local state whatever the answer.
 * Resolves to the sign-out Response, or null when no signOutPath is configured.
 */
export async function signOut() {
  let response = null;
  try {
    if (config.signOutPath) {
      response = await fetch(config.signOutPath, { method: "POST" });
    }
  } finally {
    clearLocalState();
    emit("signed-out");
  }
  return response;
}

export default {
  VERSION,
  RefreshError,
  init,
  fetch,
  attemptRefreshingSession,
  doesSessionExist,
  getUserId,
  getJWTPayload,
  getAccessTokenExpiry,
  signOut,
};

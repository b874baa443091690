// Drives sessionward.js in node against a scripted fake backend and prints one JSON object
// of results (scenario name -> observations) for tests/client_js/test_client_js.py.
// Usage: node harness.mjs /path/to/sessionward.js

import { pathToFileURL } from "node:url";

const scriptUrl = pathToFileURL(process.argv[2]).href;
const FAR = Date.now() + 3600_000;

// -- browser stand-ins ------------------------------------------------------------------------

// Cookies as a browser keeps them for `document.cookie`: one per (name, domain, host-only),
// visible to the current `location.hostname` (host-only: that host exactly; Domain: the
// domain and its sub-domains), listed oldest first; a `domain=` the host is not within is
// ignored. Paths are all "/". Every assignment is kept in `writes`.
class CookieJar {
  constructor() { this.values = new Map(); this.writes = []; }
  get cookie() {
    const now = Date.now();
    const host = location.hostname;
    return [...this.values.values()]
      .filter((c) => c.expires > now && (c.hostOnly ? c.domain === host : domainMatch(host, c.domain)))
      .map((c) => `${c.name}=${c.value}`).join("; ");
  }
  set cookie(text) {
    this.writes.push(text);
    const [pair, ...attributes] = text.split(";");
    const index = pair.indexOf("=");
    const name = pair.slice(0, index).trim();
    const value = pair.slice(index + 1).trim();
    let expires = Infinity;
    let domain = null;
    for (const attribute of attributes) {
      const [key, val] = attribute.split("=");
      if (key.trim().toLowerCase() === "expires") expires = Date.parse(val);
      if (key.trim().toLowerCase() === "domain") domain = val.trim().replace(/^\./, "").toLowerCase();
    }
    if (domain !== null && !domainMatch(location.hostname, domain)) return;
    const hostOnly = domain === null;
    const key = `${hostOnly ? "host" : "domain"}:${hostOnly ? location.hostname : domain}:${name}`;
    if (expires <= Date.now()) this.values.delete(key);
    else this.values.set(key, { name, value, expires, hostOnly, domain: hostOnly ? location.hostname : domain });
  }
  // "name@domain" of every live cookie (a leading dot marks a Domain cookie), for assertions.
  stored() {
    const now = Date.now();
    return [...this.values.values()].filter((c) => c.expires > now)
      .map((c) => `${c.name}@${c.hostOnly ? "" : "."}${c.domain}`).sort();
  }
}

function domainMatch(host, domain) {
  return host === domain || host.endsWith("." + domain);
}

class MemoryStorage {
  constructor() { this.map = new Map(); }
  getItem(key) { return this.map.has(key) ? this.map.get(key) : null; }
  setItem(key, value) { this.map.set(key, String(value)); }
  removeItem(key) { this.map.delete(key); }
}

class FakeLocks {
  constructor() { this.tail = Promise.resolve(); this.requests = 0; }
  request(name, options, callback) {
    this.requests += 1;
    const run = this.tail.then(() => callback());
    this.tail = run.catch(() => {});
    return run;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const frontToken = (uid, ate, up) => Buffer.from(JSON.stringify({ uid, ate, up })).toString("base64");

// A backend speaking the protocol: /login, /api (protected), /session/refresh, /logout.
class FakeBackend {
  constructor() {
    this.generation = 0;
    this.accessValid = false;
    this.alive = false;
    this.refreshCalls = 0;
    this.apiCalls = 0;
    this.seenAntiCsrf = [];
    this.seenCredentials = [];
    this.requests = [];
    this.onExpired = null;
  }
  tokens() {
    return {
      "id-refresh-token": `irt${this.generation};${FAR}`,
      "front-token": frontToken("alice", Date.now() + 15000, { role: "reader", generation: this.generation }),
      "anti-csrf": `csrf${this.generation}`,
      "access-control-expose-headers": "id-refresh-token, front-token, anti-csrf",
    };
  }
  fetch = async (input, init = {}) => {
    const url = new URL(typeof input === "string" ? input : input.url, "http://127.0.0.1:8000");
    const headers = new Headers(init.headers);
    this.requests.push(url.href);
    this.seenCredentials.push(init.credentials ?? null);
    await sleep(5);
    if (url.pathname === "/login") {
      this.generation += 1;
      this.alive = true;
      this.accessValid = true;
      return new Response("{}", { status: 200, headers: this.tokens() });
    }
    if (url.pathname === "/session/refresh") {
      this.refreshCalls += 1;
      await sleep(20);
      if (!this.alive) {
        return new Response('{"message":"unauthorised"}', { status: 401, headers: { "id-refresh-token": "remove" } });
      }
      this.generation += 1;
      this.accessValid = true;
      return new Response("{}", { status: 200, headers: this.tokens() });
    }
    if (url.pathname === "/logout") {
      this.alive = false;
      return new Response("{}", { status: 200, headers: { "id-refresh-token": "remove" } });
    }
    this.apiCalls += 1;
    this.seenAntiCsrf.push(headers.get("anti-csrf"));
    if (!this.accessValid || !this.alive) {
      if (this.onExpired) this.onExpired();
      return new Response('{"message":"try refresh token"}', { status: 401 });
    }
    return new Response('{"ok":true}', { status: 200 });
  };
}

// Make the page's host `host`: cookies follow location.hostname, localStorage the origin.
let storages = new Map();
function visit(host) {
  globalThis.location = { origin: `http://${host}:8000`, hostname: host, protocol: "http:" };
  if (!storages.has(location.origin)) storages.set(location.origin, new MemoryStorage());
  globalThis.localStorage = storages.get(location.origin);
}

let instance = 0;
async function setUp({ locks = false, options = {}, host = "127.0.0.1" } = {}) {
  const backend = new FakeBackend();
  globalThis.document = new CookieJar();
  storages = new Map();
  visit(host);
  globalThis.window = { fetch: backend.fetch };
  const fakeLocks = locks ? new FakeLocks() : null;
  if (locks) globalThis.navigator = { locks: fakeLocks };
  else delete globalThis.navigator;
  instance += 1;
  const client = await import(`${scriptUrl}?instance=${instance}`);
  const events = [];
  client.init({ onEvent: (event) => events.push(event.type), ...options });
  return { backend, client, events, locks: fakeLocks };
}

// -- scenarios ----------------------------------------------------------------------------------

const scenarios = {
  async noSessionNoRefresh() {
    const { backend, client } = await setUp();
    const response = await client.fetch("/api");
    return { status: response.status, refreshCalls: backend.refreshCalls, exists: await client.doesSessionExist() };
  },

  async sessionInformation() {
    const { backend, client } = await setUp();
    await client.fetch("/login", { method: "POST" });
    await client.fetch("/api");
    return {
      exists: await client.doesSessionExist(),
      userId: await client.getUserId(),
      payload: await client.getJWTPayload(),
      expiryIsNumber: typeof (await client.getAccessTokenExpiry()) === "number",
      antiCsrfSent: backend.seenAntiCsrf,
      credentials: backend.seenCredentials,
    };
  },

  async concurrentCallsShareOneRefresh() {
    const { backend, client, events } = await setUp();
    await client.fetch("/login", { method: "POST" });
    backend.accessValid = false;
    const responses = await Promise.all(Array.from({ length: 6 }, () => client.fetch("/api")));
    return {
      statuses: responses.map((r) => r.status),
      refreshCalls: backend.refreshCalls,
      payloadGeneration: (await client.getJWTPayload()).generation,
      lastAntiCsrf: backend.seenAntiCsrf.at(-1),
      events,
    };
  },

  async concurrentCallsWithWebLocks() {
    const { backend, client, locks } = await setUp({ locks: true });
    await client.fetch("/login", { method: "POST" });
    backend.accessValid = false;
    const responses = await Promise.all(Array.from({ length: 6 }, () => client.fetch("/api")));
    return { statuses: responses.map((r) => r.status), refreshCalls: backend.refreshCalls, lockRequests: locks.requests };
  },

  async anotherTabAlreadyRefreshed() {
    const { backend, client } = await setUp();
    await client.fetch("/login", { method: "POST" });
    backend.accessValid = false;
    backend.onExpired = () => {
      // Another tab refreshes while this request is in flight: new cookie, valid tokens.
      backend.onExpired = null;
      backend.generation += 1;
      backend.accessValid = true;
      document.cookie = `sIRTFrontend=irt${backend.generation}; expires=${new Date(FAR).toUTCString()}; path=/`;
    };
    const response = await client.fetch("/api");
    return { status: response.status, refreshCalls: backend.refreshCalls, apiCalls: backend.apiCalls };
  },

  async refreshRefusedEndsTheSession() {
    const { backend, client, events } = await setUp();
    await client.fetch("/login", { method: "POST" });
    backend.accessValid = false;
    backend.alive = false;
    const response = await client.fetch("/api");
    return {
      status: response.status,
      body: await response.json(),
      refreshCalls: backend.refreshCalls,
      apiCalls: backend.apiCalls,
      exists: await client.doesSessionExist(),
      userId: await client.getUserId(),
      antiCsrfLeft: localStorage.map.size,
      events,
    };
  },

  async retriesOnlyOnce() {
    const { backend, client } = await setUp();
    await client.fetch("/login", { method: "POST" });
    backend.accessValid = false;
    backend.onExpired = () => { backend.accessValid = false; };
    const original = backend.fetch;
    window.fetch = async (input, init) => {
      const response = await original(input, init);
      if (String(input).endsWith("/session/refresh")) backend.accessValid = false; // still refused after
      return response;
    };
    const response = await client.fetch("/api");
    return { status: response.status, refreshCalls: backend.refreshCalls, apiCalls: backend.apiCalls };
  },

  async storageLockFallback() {
    const { backend, client } = await setUp();
    await client.fetch("/login", { method: "POST" });
    // A stale lock left by a tab that died: expired, so it must not block.
    localStorage.setItem("sessionward.refreshLock:http://127.0.0.1:8000", JSON.stringify({ id: "dead", expires: Date.now() - 1 }));
    backend.accessValid = false;
    const statuses = (await Promise.all([client.fetch("/api"), client.fetch("/api")])).map((r) => r.status);
    return { statuses, refreshCalls: backend.refreshCalls, lockLeft: localStorage.getItem("sessionward.refreshLock:http://127.0.0.1:8000") };
  },

  async apiBaseAndSignOut() {
    const { backend, client } = await setUp({ options: { apiBase: "http://127.0.0.1:8001/", signOutPath: "/logout" } });
    await client.fetch("/login", { method: "POST" });
    await client.fetch("http://elsewhere.test/x");
    const before = await client.doesSessionExist();
    await client.signOut();
    return {
      before,
      after: await client.doesSessionExist(),
      requests: backend.requests,
      storageKeys: [...localStorage.map.keys()],
    };
  },

  async twoTabsStorageLock() {
    return twoTabs(false);
  },

  async twoTabsWebLocks() {
    return twoTabs(true);
  },

  async idRefreshRemoveClearsState() {
    const { backend, client } = await setUp({ options: { signOutPath: null } });
    await client.fetch("/login", { method: "POST" });
    const response = await client.fetch("/logout", { method: "POST" });
    return {
      status: response.status,
      exists: await client.doesSessionExist(),
      payload: await client.getJWTPayload(),
      cookies: document.cookie,
      refreshCalls: backend.refreshCalls,
    };
  },
};

// -- cookieDomain -------------------------------------------------------------------------------

const SITE = ".example.test";
const WWW = "www.example.test";
const APP = "app.example.test";

// document.cookie assignments with the dates and the front-token value made comparable.
function writes() {
  return document.writes.map((text) => text
    .replace(/^sFrontToken=[^;]+/, "sFrontToken=<front-token>")
    .replace(/expires=([^;]*)/, (_, date) => `expires=<${Date.parse(date) > Date.now() ? "future" : "past"}>`));
}

function antiCsrfCookie() {
  const part = document.cookie.split("; ").find((pair) => pair.startsWith("sAntiCsrf="));
  return part === undefined ? null : JSON.parse(decodeURIComponent(part.slice("sAntiCsrf=".length)));
}

async function newTab(options) {
  instance += 1;
  const client = await import(`${scriptUrl}?instance=${instance}`);
  client.init(options);
  return client;
}

Object.assign(scenarios, {
  async cookieDomainValidation() {
    const { client } = await setUp({ host: WWW });
    const attempt = (value, hostname = WWW) => {
      visit(hostname);
      try {
        client.init({ cookieDomain: value });
        return { value, accepted: true };
      } catch (error) {
        return { value, accepted: false, message: String(error.message) };
      }
    };
    const good = [SITE, "example.test", WWW, "." + WWW, ".Example.TEST", null, undefined];
    const bad = [
      "", ".", "..example.test", ".example.test; secure", ".example.test;", ".example.test,.evil.test",
      "a=b.example.test", " .example.test", ".example.test ", ".exa mple.test", ".example.test\n",
      ".example.test\r\nSet-Cookie: x", ".exa\u0000mple.test", ".exa\u007fmple.test", ".exa\tmple.test",
      ".evil.test", "xample.test", "ample.test", "api.example.test", "deep.www.example.test",
      ".example.test.", 42, true, {},
    ];
    const results = {
      good: good.map((value) => attempt(value)),
      bad: bad.map((value) => attempt(value)),
      address: [attempt("127.0.0.1", "127.0.0.1"), attempt("0.0.1", "127.0.0.1"), attempt(".0.0.1", "127.0.0.1")],
    };
    // A refused value leaves the previous configuration in place.
    visit(WWW);
    client.init({ cookieDomain: SITE });
    const refused = attempt(".evil.test");
    await client.fetch("/login", { method: "POST" });
    results.afterRefused = { refused: refused.accepted, stored: document.stored() };
    return results;
  },

  async cookieDomainWritesDomainCookies() {
    const { backend, client } = await setUp({ host: WWW, options: { cookieDomain: SITE } });
    await client.fetch("/login", { method: "POST" });
    const response = await client.fetch("/api", { method: "POST" });
    return {
      status: response.status,
      writes: writes(),
      stored: document.stored(),
      antiCsrfCookie: antiCsrfCookie(),
      antiCsrfSent: backend.seenAntiCsrf,
      localStorageKeys: [...localStorage.map.keys()],
      userId: await client.getUserId(),
    };
  },

  async cookieDomainDefaultUnchanged() {
    const { backend, client } = await setUp({ host: WWW });
    await client.fetch("/login", { method: "POST" });
    const response = await client.fetch("/api", { method: "POST" });
    const signedIn = {
      stored: document.stored(),
      record: JSON.parse(localStorage.getItem(`sessionward.antiCsrf:${location.origin}`)),
    };
    await client.signOut();
    return {
      status: response.status,
      antiCsrfSent: backend.seenAntiCsrf,
      signedIn,
      writes: writes(),
      storedAfter: document.stored(),
      localStorageAfter: [...localStorage.map.keys()],
    };
  },

  async cookieDomainSiblingHostSharesSession() {
    const options = { cookieDomain: SITE, signOutPath: "/logout" };
    const { backend, client: www } = await setUp({ host: WWW, options });
    await www.fetch("/login", { method: "POST" });
    visit(APP);
    const app = await newTab(options);
    const onApp = { exists: await app.doesSessionExist(), userId: await app.getUserId() };
    onApp.post = (await app.fetch("/api", { method: "POST" })).status;
    backend.accessValid = false;
    onApp.afterExpiry = (await app.fetch("/api", { method: "POST" })).status;
    onApp.refreshCalls = backend.refreshCalls;
    visit(WWW);
    const onWww = { post: (await www.fetch("/api", { method: "POST" })).status };
    onWww.refreshCalls = backend.refreshCalls;
    onWww.payloadGeneration = (await www.getJWTPayload()).generation;
    visit(APP);
    await app.signOut();
    visit(WWW);
    onWww.afterSignOut = {
      exists: await www.doesSessionExist(), userId: await www.getUserId(), cookie: document.cookie,
    };
    return { onApp, onWww, antiCsrfSent: backend.seenAntiCsrf, stored: document.stored() };
  },

  async cookieDomainReplacesHostOnlyCopies() {
    const { client } = await setUp({ host: WWW });
    await client.fetch("/login", { method: "POST" });
    const before = { stored: document.stored(), localStorageKeys: [...localStorage.map.keys()] };
    client.init({ cookieDomain: SITE });
    const existsWithLeftovers = await client.doesSessionExist();
    await client.fetch("/login", { method: "POST" });
    return {
      before,
      existsWithLeftovers,
      stored: document.stored(),
      idRefresh: idRefreshPairs(),
      antiCsrfCookie: antiCsrfCookie(),
      localStorageKeys: [...localStorage.map.keys()],
    };
  },

  async cookieDomainSignOutClearsBothCopies() {
    return clearedWithLeftovers(async (client) => {
      client.init({ cookieDomain: SITE, signOutPath: "/logout" });
      await client.signOut();
    });
  },

  async cookieDomainSessionGoneClearsBothCopies() {
    return clearedWithLeftovers(async (client, backend) => {
      client.init({ cookieDomain: SITE });
      backend.accessValid = false;
      backend.alive = false;
      await client.fetch("/api");
    });
  },

  // Host-only copies from before the option and site-wide cookies written since by a page on
  // another host: init drops the hiding host-only copies, the site-wide session is used at once.
  async cookieDomainInitDropsShadowingCopies() {
    const { backend, client } = await setUp({ host: WWW });
    await client.fetch("/login", { method: "POST" });
    visit(APP);
    const app = await newTab({ cookieDomain: SITE });
    await app.fetch("/login", { method: "POST" });
    visit(WWW);
    const before = { stored: document.stored(), idRefresh: idRefreshPairs() };
    client.init({ cookieDomain: SITE });
    const started = Date.now();
    const status = (await client.fetch("/api", { method: "POST" })).status;
    return {
      before,
      stored: document.stored(),
      idRefresh: idRefreshPairs(),
      status,
      quick: Date.now() - started < 500,
      antiCsrfSent: backend.seenAntiCsrf,
      refreshCalls: backend.refreshCalls,
    };
  },
});

function idRefreshPairs() {
  return document.cookie.split("; ").filter((pair) => pair.startsWith("sIRTFrontend="));
}

// A session signed in before cookieDomain (host-only cookies, localStorage record), then the
// option set and `end` ends the session.
async function clearedWithLeftovers(end) {
  const { backend, client } = await setUp({ host: WWW });
  await client.fetch("/login", { method: "POST" });
  const before = { stored: document.stored(), localStorageKeys: [...localStorage.map.keys()] };
  await end(client, backend);
  return {
    before,
    stored: document.stored(),
    cookie: document.cookie,
    localStorageKeys: [...localStorage.map.keys()],
    exists: await client.doesSessionExist(),
    writes: writes(),
  };
}

// Two module instances ("tabs") sharing cookies, localStorage and locks: both get the
// expired status at once, exactly one refresh runs.
async function twoTabs(locks) {
  const { backend, client } = await setUp({ locks });
  instance += 1;
  const other = await import(`${scriptUrl}?instance=${instance}`);
  other.init({});
  await client.fetch("/login", { method: "POST" });
  backend.accessValid = false;
  const responses = await Promise.all([client.fetch("/api"), other.fetch("/api"), client.fetch("/api"), other.fetch("/api")]);
  return { statuses: responses.map((r) => r.status), refreshCalls: backend.refreshCalls };
}

const results = {};
for (const [name, scenario] of Object.entries(scenarios)) {
  try {
    results[name] = await scenario();
  } catch (error) {
    results[name] = { error: String(error && error.stack ? error.stack : error) };
  }
}
console.log(JSON.stringify(results));

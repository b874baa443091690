// Drives sessionward.js in node against a scripted fake backend and prints one JSON object
// of results (scenario name -> observations) for tests/client_js/test_client_js.py.
// Usage: node harness.mjs /path/to/sessionward.js

import { pathToFileURL } from "node:url";

const scriptUrl = pathToFileURL(process.argv[2]).href;
const FAR = Date.now() + 3600_000;

// -- browser stand-ins ------------------------------------------------------------------------

class CookieJar {
  constructor() { this.values = new Map(); }
  get cookie() {
    const now = Date.now();
    return [...this.values].filter(([, v]) => v.expires > now).map(([k, v]) => `${k}=${v.value}`).join("; ");
  }
  set cookie(text) {
    const [pair, ...attributes] = text.split(";");
    const index = pair.indexOf("=");
    const name = pair.slice(0, index).trim();
    const value = pair.slice(index + 1).trim();
    let expires = Infinity;
    for (const attribute of attributes) {
      const [key, val] = attribute.split("=");
      if (key.trim().toLowerCase() === "expires") expires = Date.parse(val);
    }
    if (expires <= Date.now()) this.values.delete(name);
    else this.values.set(name, { value, expires });
  }
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

let instance = 0;
async function setUp({ locks = false, options = {} } = {}) {
  const backend = new FakeBackend();
  globalThis.document = new CookieJar();
  globalThis.localStorage = new MemoryStorage();
  globalThis.location = { origin: "http://127.0.0.1:8000", protocol: "http:" };
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

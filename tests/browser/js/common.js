// Operations every adapter offers the tests (all async, called through page.evaluate).
// An adapter supplies `client`: { name, init(cfg), fetch(url, options), doesSessionExist(),
// getUserId(), getJWTPayload(), attemptRefresh(), signOut() }; a method a client lacks is null.
// Optional: getAccessToken() (today's SDKs), and rawFetch, the page's fetch from before the
// client patched it, for `raw` when the client intercepts XMLHttpRequest too.

let config = null;

function url(path) {
  return config.apiBase + path;
}

async function decode(response) {
  const text = await response.text();
  let body = text;
  try {
    body = JSON.parse(text);
  } catch (error) {
    // not JSON: keep the text
  }
  return { status: response.status, body };
}

export function makeHarness(client) {
  const harness = {
    async init(cfg) {
      config = { refreshPath: "/session/refresh", sessionExpiredStatusCode: 401, ...cfg };
      await client.init(config);
      return client.name;
    },
    supports() {
      return { getUserId: client.getUserId !== null, getJWTPayload: client.getJWTPayload !== null };
    },
    async call(path, method = "GET", body = undefined) {
      const options = { method };
      if (body !== undefined) {
        options.body = JSON.stringify(body);
        options.headers = { "content-type": "application/json" };
      }
      try {
        return await decode(await client.fetch(url(path), options));
      } catch (error) {
        return { status: -1, body: String(error && error.message ? error.message : error) };
      }
    },
    async login(userId, payload = {}) {
      return harness.call("/login", "POST", { user_id: userId, payload });
    },
    async parallel(n, path, method = "GET") {
      const calls = [];
      for (let i = 0; i < n; i += 1) calls.push(harness.call(path, method));
      return Promise.all(calls);
    },
    // A call around the client (XMLHttpRequest with cookies, no anti-csrf header, no refresh);
    // `headers`: only these request headers are added.
    async raw(path, method = "GET", headers = {}) {
      if (client.rawFetch) {
        try {
          const response = await client.rawFetch(url(path), { method, headers, credentials: "include" });
          return { status: response.status, body: await response.text() };
        } catch (error) {
          return { status: -1, body: "network error" };
        }
      }
      return new Promise((resolve) => {
        const request = new XMLHttpRequest();
        request.open(method, url(path));
        request.withCredentials = true;
        for (const [name, value] of Object.entries(headers)) request.setRequestHeader(name, value);
        request.onload = () => resolve({ status: request.status, body: request.responseText });
        request.onerror = () => resolve({ status: -1, body: "network error" });
        request.send();
      });
    },
    async doesSessionExist() {
      return Boolean(await client.doesSessionExist());
    },
    async getUserId() {
      return client.getUserId();
    },
    async getJWTPayload() {
      return client.getJWTPayload();
    },
    async attemptRefresh() {
      return client.attemptRefresh();
    },
    async signOut() {
      return client.signOut();
    },
    async getAccessToken() {
      if (!client.getAccessToken) return null;
      return (await client.getAccessToken()) ?? null;
    },
    // The front token the client keeps in the sFrontToken cookie, decoded ({uid, ate, up}), or null.
    frontToken() {
      const match = document.cookie.match(/(?:^|; )sFrontToken=([^;]*)/);
      if (!match || !match[1] || match[1] === "remove") return null;
      return JSON.parse(decodeURIComponent(escape(atob(match[1]))));
    },
    // Frontend state the client keeps in cookies readable by the page.
    frontCookies() {
      return document.cookie;
    },
  };
  return harness;
}

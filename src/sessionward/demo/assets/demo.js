// The demo page: everything goes through the package's browser client.
import * as sessionward from "/sessionward/sessionward.js";

const $ = (id) => document.getElementById(id);
let refreshes = 0;
let countdownTimer = null;
// The server writes the access-token validity (seconds) into the page.
let validityMs = 1000 * (Number(document.body.dataset.accessTokenValidity) || 15);

sessionward.init({
  refreshPath: "/session/refresh",
  signOutPath: "/api/signout",
  onEvent(event) {
    if (event.type === "refresh-started") log("access token expired: refreshing…", "refresh");
    if (event.type === "refreshed") {
      refreshes += 1;
      log("refreshed: new access and refresh tokens", "refresh");
    }
    if (event.type === "session-expired") log("the session is gone (refresh refused)", "bad");
  },
});

function log(text, kind = "") {
  const item = document.createElement("li");
  if (kind) item.className = kind;
  const time = document.createElement("time");
  time.textContent = new Date().toLocaleTimeString();
  item.append(time, text);
  $("log").prepend(item);
}

function show(element, text) {
  element.textContent = text;
  element.hidden = false;
}

function pretty(value) {
  return JSON.stringify(value, null, 2);
}

async function api(method, path, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["content-type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const before = refreshes;
  const response = await sessionward.fetch(path, options);
  let json = null;
  try {
    json = await response.json();
  } catch {
    json = null;
  }
  return { response, json, refreshed: refreshes > before };
}

async function render() {
  const signedIn = await sessionward.doesSessionExist();
  $("signin").hidden = signedIn;
  $("dashboard").hidden = !signedIn;
  if (!signedIn) {
    clearInterval(countdownTimer);
    countdownTimer = null;
    return;
  }
  $("user-id").textContent = (await sessionward.getUserId()) ?? "–";
  const payload = await sessionward.getJWTPayload();
  $("payload").textContent = pretty(payload ?? {});
  if (!$("payload-input").value) $("payload-input").value = pretty(payload ?? {});
  if (!countdownTimer) countdownTimer = setInterval(tick, 250);
  tick();
}

async function tick() {
  const expiry = await sessionward.getAccessTokenExpiry();
  if (expiry === null) return;
  const left = expiry - Date.now();
  const big = $("countdown");
  if (left > 0) {
    big.textContent = `${(left / 1000).toFixed(1)} s`;
    big.classList.remove("expired");
    $("countdown-note").textContent = "";
  } else {
    big.textContent = "expired";
    big.classList.add("expired");
    $("countdown-note").textContent = "the next API call refreshes it first";
  }
  validityMs = Math.max(validityMs, left);
  $("countdown-bar").style.width = `${Math.max(0, Math.min(100, (100 * left) / validityMs))}%`;
}

const REMEMBER_HINTS = {
  true: "Kept across browser restarts until it has not been used for the refresh token's lifetime.",
  false: "Not remembered: the session cookies end with this browser session (no Expires or Max-Age), " +
    "and the server forgets the session after a day unused.",
};

function rememberHint() {
  $("remember-hint").textContent = REMEMBER_HINTS[$("remember").checked];
}

async function signIn(name) {
  const remember = $("remember").checked;
  const { response, json } = await api("POST", "/api/signin", { name, remember });
  if (!response.ok) {
    show($("signin-error"), json?.message ?? `sign-in failed (${response.status})`);
    return;
  }
  $("signin-error").hidden = true;
  log(`signed in as ${json.user_id}${remember ? "" : " (not remembered: cookies end with the browser session)"}`);
  $("handle").textContent = json.handle;
  $("payload-input").value = "";
  $("codes").hidden = true;
  $("reauth-form").hidden = true;
  $("codes-error").hidden = true;
  await loadDevices();
  await render();
}

async function callApi() {
  const { response, json, refreshed } = await api("GET", "/api/me");
  const verdict = $("refresh-verdict");
  verdict.className = "verdict";
  if (response.ok) {
    $("handle").textContent = json.handle;
    verdict.classList.add(refreshed ? "refreshed" : "plain");
    show(verdict, refreshed
      ? "200 — the access token had expired: the client refreshed it and retried"
      : "200 — the access token was valid: no refresh");
    log(`GET /api/me → 200${refreshed ? " (after a refresh)" : ""}`);
  } else {
    verdict.classList.add("bad");
    show(verdict, `${response.status} — ${json?.message ?? "failed"}`);
    log(`GET /api/me → ${response.status}`, "bad");
  }
  show($("api-answer"), pretty(json));
  await render();
}

async function updatePayload() {
  let payload;
  try {
    payload = JSON.parse($("payload-input").value);
  } catch {
    show($("payload-error"), "not valid JSON");
    return;
  }
  const { response, json } = await api("POST", "/api/payload", { payload });
  if (!response.ok) {
    show($("payload-error"), json?.message ?? `failed (${response.status})`);
  } else {
    $("payload-error").hidden = true;
    log("JWT payload updated: a new access token carries it");
  }
  await render();
}

async function saveData() {
  let data;
  try {
    data = JSON.parse($("data-input").value || "{}");
  } catch {
    show($("data-answer"), "not valid JSON");
    return;
  }
  const { response, json } = await api("PUT", "/api/data", { data });
  show($("data-answer"), response.ok ? `saved:\n${pretty(json.data)}` : `${response.status}: ${json?.message}`);
  if (response.ok) log("session data saved");
  await render();
}

async function readData() {
  const { response, json } = await api("GET", "/api/data");
  show($("data-answer"), response.ok ? `read back:\n${pretty(json.data)}` : `${response.status}: ${json?.message}`);
  if (response.ok && !$("data-input").value) $("data-input").value = pretty(json.data);
  await render();
}

// "last active 2 min ago", against the server's clock (the answer's "now").
function ago(ms) {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

function badge(text, kind = "") {
  const element = document.createElement("span");
  element.className = `badge ${kind}`.trim();
  element.textContent = text;
  return element;
}

async function loadDevices() {
  const { response, json } = await api("GET", "/api/sessions");
  const table = $("devices");
  const body = table.querySelector("tbody");
  body.replaceChildren();
  if (!response.ok) return;
  for (const row of json.sessions) {
    const tr = document.createElement("tr");
    tr.dataset.handle = row.handle;
    const device = document.createElement("td");
    device.className = "device";
    device.append(row.device);
    if (row.current) device.append(badge("this device"));
    if (!row.persistent) device.append(badge("until the browser closes", "session-only"));
    const handle = document.createElement("small");
    handle.textContent = row.handle.slice(0, 13) + "…";
    handle.title = `${row.handle}\n${row.user_agent ?? "no User-Agent"}`;
    device.append(handle);
    const ip = document.createElement("td");
    ip.textContent = row.ip ?? "–";
    const active = document.createElement("td");
    active.textContent = ago(json.now - row.last_active_at);
    active.title = new Date(row.last_active_at).toLocaleString();
    const action = document.createElement("td");
    const revoke = document.createElement("button");
    revoke.textContent = "Sign out device";
    revoke.addEventListener("click", () => revokeSession(row.handle));
    action.append(revoke);
    tr.append(device, ip, active, action);
    body.append(tr);
    if (row.current) {
      $("persistence").textContent = row.persistent
        ? "remembered (kept across browser restarts)"
        : "not remembered: they end with this browser session";
    }
  }
  table.hidden = false;
}

async function listDevices() {
  await loadDevices();
  log(`${$("devices").querySelectorAll("tbody tr").length} device(s) signed in`);
  await render();
}

async function revokeSession(handle) {
  const { response, json } = await api("DELETE", `/api/sessions/${encodeURIComponent(handle)}`);
  log(response.ok ? `signed out device ${handle.slice(0, 8)}…${json.current ? " (this one)" : ""}` : `sign-out failed: ${response.status}`,
    response.ok ? "" : "bad");
  if (response.ok && !json.current) await loadDevices();
  await render();
}

async function signOutOthers() {
  const { response, json } = await api("POST", "/api/signout-others");
  if (response.ok) {
    log(`signed out ${json.revoked} other device(s)`);
    await loadDevices();
  } else {
    log(`sign-out of the other devices failed: ${response.status}`, "bad");
  }
  await render();
}

async function viewCodes() {
  const { response, json } = await api("GET", "/api/recovery-codes");
  if (response.ok) {
    $("reauth-form").hidden = true;
    $("codes-error").hidden = true;
    show($("codes"), json.codes.join("\n"));
    log("GET /api/recovery-codes → 200");
  } else if (response.status === 403 && json?.message === "re-authentication required") {
    $("codes").hidden = true;
    $("codes-error").hidden = true;
    $("reauth-form").hidden = false;
    $("reauth-name").focus();
    log(`GET /api/recovery-codes → 403 re-authentication required (sign-in older than ${$("max-auth-age").textContent.trim()})`, "bad");
  } else {
    $("codes").hidden = true;
    show($("codes-error"), `${response.status} — ${json?.message ?? "failed"}`);
    log(`GET /api/recovery-codes → ${response.status}`, "bad");
  }
  await render();
}

async function reauthenticate() {
  const { response, json } = await api("POST", "/api/reauthenticate", { name: $("reauth-name").value });
  if (!response.ok) {
    show($("codes-error"), json?.message ?? `re-authentication failed (${response.status})`);
    log(`re-authentication refused (${response.status})`, "bad");
    await render();
    return;
  }
  $("reauth-name").value = "";
  $("reauth-form").hidden = true;
  log("re-authenticated: the session counts as freshly signed in");
  await viewCodes(); // retry the action
}

async function signOut(everywhere) {
  if (everywhere) {
    const { json } = await api("POST", "/api/signout-everywhere");
    log(`signed out everywhere (${json?.revoked ?? 0} session(s) revoked)`);
  } else {
    await sessionward.signOut();
    log("signed out");
  }
  await render();
}

async function simulateTheft() {
  const steps = $("theft-steps");
  steps.replaceChildren();
  const step = (text, kind = "") => {
    const item = document.createElement("li");
    item.textContent = text;
    if (kind) item.className = kind;
    steps.append(item);
  };
  const button = $("simulate-theft");
  button.disabled = true;
  try {
    const stolen = await api("POST", "/session/refresh/demo-steal");
    if (!stolen.response.ok) {
      step(`could not copy the refresh token: ${stolen.json?.message ?? stolen.response.status}`, "bad");
      return;
    }
    step(`1. The attacker copies your refresh token (fingerprint ${stolen.json.fingerprint}).`);
    for (const round of [1, 2]) {
      await sessionward.attemptRefreshingSession();
      await api("GET", "/api/me"); // the first use of the new tokens commits the rotation
      step(`${round + 1}. You keep browsing: refresh #${round} rotates your refresh token.`);
    }
    const replay = await api("POST", "/api/demo-replay");
    if (!replay.response.ok) {
      step(`replay failed: ${replay.json?.message ?? replay.response.status}`, "bad");
      return;
    }
    step(`4. The attacker replays the old copy → ${replay.json.verdict}. ${replay.json.explanation}`,
      replay.json.session_revoked ? "bad" : "");
    log(`theft simulation: ${replay.json.verdict}`, replay.json.session_revoked ? "bad" : "");
    const after = await api("GET", "/api/me");
    step(`5. Your next call: ${after.response.status} ${after.json?.message ?? ""} — ` +
      ((await sessionward.doesSessionExist()) ? "still signed in." : "you are signed out, and so is the attacker."),
      after.response.ok ? "" : "ok");
  } finally {
    button.disabled = false;
    await render();
  }
}

$("signin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn($("name").value);
});
$("call-api").addEventListener("click", callApi);
$("update-payload").addEventListener("click", updatePayload);
$("save-data").addEventListener("click", saveData);
$("read-data").addEventListener("click", readData);
$("list-devices").addEventListener("click", listDevices);
$("signout-others").addEventListener("click", signOutOthers);
$("view-codes").addEventListener("click", viewCodes);
$("reauth-form").addEventListener("submit", (event) => {
  event.preventDefault();
  reauthenticate();
});
$("remember").addEventListener("change", rememberHint);
$("signout").addEventListener("click", () => signOut(false));
$("signout-everywhere").addEventListener("click", () => signOut(true));
$("simulate-theft").addEventListener("click", simulateTheft);
window.addEventListener("storage", () => render()); // another tab signed in or out

(async () => {
  // Demo-only: /?signin=NAME signs in at once (used to take the README screenshot).
  const wanted = new URLSearchParams(location.search).get("signin");
  if (wanted && !(await sessionward.doesSessionExist())) await signIn(wanted);
  await render();
  if (await sessionward.doesSessionExist()) {
    const { response, json } = await api("GET", "/api/me");
    if (response.ok) {
      $("handle").textContent = json.handle;
      await loadDevices();
    }
    await render();
  }
  log((await sessionward.doesSessionExist()) ? "session found" : "no session: sign in");
})();

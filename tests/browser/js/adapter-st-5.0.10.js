// supertokens-website 5.0.10 (global `supertokens` from the esbuild bundle): init patches
// window.fetch; the refresh URL is apiDomain + apiBasePath + "/session/refresh", so
// apiBasePath "/" targets the default refresh_api_path. No signOut in 5.0.x.
import { makeHarness } from "./common.js";

const sdk = window.supertokens;
let base = "";

async function withoutSessionNull(operation) {
  if (!sdk.doesSessionExist()) return null;
  return operation();
}

const client = {
  name: "supertokens-website@5.0.10",
  async init(cfg) {
    if (!cfg.refreshPath.endsWith("/session/refresh")) {
      throw new Error("5.0.x needs a refresh path ending in /session/refresh");
    }
    base = cfg.apiBase;
    sdk.init({
      apiDomain: cfg.apiBase,
      apiBasePath: cfg.refreshPath.slice(0, -"/session/refresh".length) || "/",
      sessionExpiredStatusCode: cfg.sessionExpiredStatusCode,
      // the domain of the frontend cookies (default: the page's host name)
      sessionScope: cfg.sessionScope,
    });
  },
  fetch: (input, options) => window.fetch(input, options),
  doesSessionExist: () => sdk.doesSessionExist(),
  // Both throw "No session exists" without a session; the harness answers null instead.
  getUserId: () => withoutSessionNull(() => sdk.getUserId()),
  getJWTPayload: () => withoutSessionNull(() => sdk.getJWTPayloadSecurely()),
  attemptRefresh: () => sdk.attemptRefreshingSession(),
  async signOut() {
    return (await window.fetch(base + "/logout", { method: "POST" })).status;
  },
};

const harness = makeHarness(client);
export const { init, supports, call, login, parallel, raw, doesSessionExist, getUserId, getJWTPayload,
  attemptRefresh, signOut, frontCookies } = harness;

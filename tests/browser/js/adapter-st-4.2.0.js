// supertokens-website 4.2.0 (global `supertokens` from the esbuild bundle): the fetch
// flavour patches window.fetch; no getUserId / getJWTPayloadSecurely / signOut in 4.2.0.
import { makeHarness } from "./common.js";

const sdk = window.supertokens.fetch;
let base = "";

const client = {
  name: "supertokens-website@4.2.0",
  async init(cfg) {
    base = cfg.apiBase;
    // cfg.sessionScope: the domain of the frontend cookie (sIRTFrontend); 4.2.0 calls it
    // websiteRootDomain (default: the page's host name).
    sdk.init({
      refreshTokenUrl: cfg.apiBase + cfg.refreshPath,
      sessionExpiredStatusCode: cfg.sessionExpiredStatusCode,
      websiteRootDomain: cfg.sessionScope,
    });
  },
  fetch: (input, options) => window.fetch(input, options),
  doesSessionExist: () => sdk.doesSessionExist(),
  getUserId: null,
  getJWTPayload: null,
  attemptRefresh: () => sdk.attemptRefreshingSession(),
  // Sign-out is the application's route: the SDK acts on `id-refresh-token: remove`.
  async signOut() {
    return (await window.fetch(base + "/logout", { method: "POST" })).status;
  },
};

const harness = makeHarness(client);
export const { init, supports, call, login, parallel, raw, doesSessionExist, getUserId, getJWTPayload,
  attemptRefresh, signOut, frontCookies } = harness;

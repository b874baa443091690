// Our own client, loaded from the API server (GET /sessionward/sessionward.js).
import { makeHarness } from "./common.js";

let sw = null;

const client = {
  name: "sessionward",
  async init(cfg) {
    sw = await import(cfg.apiBase + "/sessionward/sessionward.js");
    sw.init({
      apiBase: cfg.apiBase,
      refreshPath: cfg.refreshPath,
      sessionExpiredStatusCode: cfg.sessionExpiredStatusCode,
      signOutPath: "/logout",
      // cfg.sessionScope: the domain of the frontend cookies (default: host-only)
      cookieDomain: cfg.sessionScope ?? null,
    });
  },
  fetch: (input, options) => sw.fetch(input, options),
  doesSessionExist: () => sw.doesSessionExist(),
  getUserId: () => sw.getUserId(),
  getJWTPayload: () => sw.getJWTPayload(),
  attemptRefresh: () => sw.attemptRefreshingSession(),
  async signOut() {
    const response = await sw.signOut();
    return response === null ? null : response.status;
  },
};

const harness = makeHarness(client);
export const { init, supports, call, login, parallel, raw, doesSessionExist, getUserId, getJWTPayload,
  attemptRefresh, signOut, frontCookies } = harness;

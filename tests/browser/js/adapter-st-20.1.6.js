// supertokens-website 20.1.6 (global `supertokens` from the esbuild bundle): init patches
// window.fetch and XMLHttpRequest. The refresh URL is apiDomain + apiBasePath +
// "/session/refresh" and sign-out posts to apiDomain + apiBasePath + "/signout", so
// apiBasePath is the refresh path without "/session/refresh" ("/" for the default).
// cfg.tokenTransferMethod: "cookie" (default) or "header".
import { makeHarness } from "./common.js";
import { apiBasePath, sessionCalls, withoutSessionNull } from "./current.js";

const sdk = window.supertokens;
const pageFetch = window.fetch.bind(window); // before init patches it
const calls = sessionCalls();

const client = {
  name: "supertokens-website@20.1.6",
  async init(cfg) {
    sdk.init({
      apiDomain: cfg.apiBase,
      apiBasePath: apiBasePath(cfg.refreshPath),
      tokenTransferMethod: cfg.tokenTransferMethod ?? "cookie",
      sessionExpiredStatusCode: cfg.sessionExpiredStatusCode,
      postAPIHook: calls.postAPIHook,
    });
  },
  fetch: (input, options) => window.fetch(input, options),
  rawFetch: pageFetch,
  doesSessionExist: () => sdk.doesSessionExist(),
  getUserId: () => withoutSessionNull(() => sdk.getUserId()),
  getJWTPayload: () => withoutSessionNull(() => sdk.getAccessTokenPayloadSecurely()),
  getAccessToken: () => sdk.getAccessToken(),
  attemptRefresh: () => sdk.attemptRefreshingSession(),
  signOut: () => calls.signOut(() => sdk.signOut()),
};

const harness = makeHarness(client);
export const { init, supports, call, login, parallel, raw, doesSessionExist, getUserId, getJWTPayload,
  attemptRefresh, signOut, getAccessToken, frontToken, frontCookies } = harness;

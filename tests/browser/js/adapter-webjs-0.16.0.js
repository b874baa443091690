// supertokens-web-js 0.16.0 with its session recipe (global `supertokensWebJs` from the
// esbuild bundle: { SuperTokens, Session }), over supertokens-website 20.1.6. Session.init
// patches window.fetch and XMLHttpRequest; the refresh and sign-out URLs are built as in
// supertokens-website 20.x from appInfo's apiDomain and apiBasePath.
// cfg.tokenTransferMethod: "cookie" (default) or "header".
import { makeHarness } from "./common.js";
import { apiBasePath, sessionCalls, withoutSessionNull } from "./current.js";

const { SuperTokens, Session } = window.supertokensWebJs;
const pageFetch = window.fetch.bind(window); // before init patches it
const calls = sessionCalls();

const client = {
  name: "supertokens-web-js@0.16.0",
  async init(cfg) {
    SuperTokens.init({
      appInfo: { appName: "sessionward interop", apiDomain: cfg.apiBase, apiBasePath: apiBasePath(cfg.refreshPath) },
      recipeList: [
        Session.init({
          tokenTransferMethod: cfg.tokenTransferMethod ?? "cookie",
          sessionExpiredStatusCode: cfg.sessionExpiredStatusCode,
          postAPIHook: calls.postAPIHook,
        }),
      ],
    });
  },
  fetch: (input, options) => window.fetch(input, options),
  rawFetch: pageFetch,
  doesSessionExist: () => Session.doesSessionExist(),
  getUserId: () => withoutSessionNull(() => Session.getUserId()),
  getJWTPayload: () => withoutSessionNull(() => Session.getAccessTokenPayloadSecurely()),
  getAccessToken: () => Session.getAccessToken(),
  attemptRefresh: () => Session.attemptRefreshingSession(),
  signOut: () => calls.signOut(() => Session.signOut()),
};

const harness = makeHarness(client);
export const { init, supports, call, login, parallel, raw, doesSessionExist, getUserId, getJWTPayload,
  attemptRefresh, signOut, getAccessToken, frontToken, frontCookies } = harness;

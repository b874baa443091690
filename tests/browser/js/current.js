// Pieces shared by the adapters of today's SDKs (supertokens-website 20.x, supertokens-web-js).

// The SDKs append "/session/refresh" and "/signout" to apiDomain + apiBasePath.
export function apiBasePath(refreshPath) {
  if (!refreshPath.endsWith("/session/refresh")) {
    throw new Error("the SDK needs a refresh path ending in /session/refresh");
  }
  return refreshPath.slice(0, -"/session/refresh".length) || "/";
}

// getUserId / getAccessTokenPayloadSecurely throw "No session exists" without a session; the
// harness answers null instead (asking doesSessionExist first could start a refresh).
export async function withoutSessionNull(operation) {
  try {
    return await operation();
  } catch (error) {
    if (error && error.message === "No session exists") return null;
    throw error;
  }
}

// signOut() resolves to nothing: the sign-out API's answer is read in the postAPIHook. The
// harness answers { status, body } of the sign-out call, or null when the SDK made none (no
// session, or a 401 it handled itself).
export function sessionCalls() {
  let last = null;
  return {
    async postAPIHook(context) {
      if (context.action !== "SIGN_OUT") return;
      const text = await context.fetchResponse.text();
      let body = text;
      try {
        body = JSON.parse(text);
      } catch (error) {
        // not JSON: keep the text
      }
      last = { status: context.fetchResponse.status, body };
    },
    async signOut(operation) {
      last = null;
      try {
        await operation();
      } catch (error) {
        if (error instanceof Response) return { status: error.status, body: await error.text() };
        throw error;
      }
      return last;
    },
  };
}

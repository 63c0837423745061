// Who is signed in, and the Authorization header for their calls.
//
// A personal access token is kept in sessionStorage only: never in a URL, a cookie or
// localStorage, so it is gone when the tab closes, and "Sign out" removes it at once.
// "Sign in with Microsoft" uses MSAL.js (authorization code + PKCE, full-page redirect) with its
// cache in sessionStorage too; it is offered only when the app names the console's client ID.

const TOKEN_KEY = "junction.token";
const MODE_KEY = "junction.signin";
const NEXT_KEY = "junction.next";

let config = { aad: null };
let msalApp = null;
let session = 0; // counts sign-outs: a token asked for in one session is never used in the next
const asking = new Set(); // MSAL token requests not settled yet: sign-out waits for them

function signedOutError() {
  return new DOMException("signed out while the call was waiting for its token", "AbortError");
}

export function readConfig() {
  const meta = document.querySelector('meta[name="junction-console"]');
  try {
    config = JSON.parse(meta ? meta.content : "{}") || { aad: null };
  } catch {
    config = { aad: null };
  }
  return config;
}

export const aadOffered = () => Boolean(config.aad);

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.addEventListener("load", resolve);
    script.addEventListener("error", () => reject(new Error(`could not load ${src}`)));
    document.head.append(script);
  });
}

/** Only pages that start at the console's own origin and path may be returned to. */
export function safeNext(value) {
  if (typeof value !== "string" || !value.startsWith("/console/") || value.startsWith("//") || value.includes("\\")) return "/console/scenarios";
  if (value.startsWith("/console/signin")) return "/console/scenarios";
  return value;
}

/**
 * Set MSAL up when Azure AD sign-in is offered, and finish a sign-in that just came back from
 * the authority. Resolves to the page to show after a completed sign-in, or null.
 */
export async function initAuth(assetBase) {
  if (!config.aad) return null;
  await loadScript(`${assetBase}/vendor/msal-browser.min.js`);
  const msal = window.msal;
  msalApp = new msal.PublicClientApplication({
    auth: {
      clientId: config.aad.clientId,
      authority: config.aad.authority,
      knownAuthorities: [config.aad.knownAuthority],
      redirectUri: `${location.origin}/console/`,
      postLogoutRedirectUri: `${location.origin}/console/signin`,
    },
    cache: { cacheLocation: "sessionStorage" },
    system: { loggerOptions: { logLevel: msal.LogLevel.Warning, loggerCallback: () => {} } },
  });
  await msalApp.initialize();
  const result = await msalApp.handleRedirectPromise({ navigateToLoginRequestUrl: false });
  if (result && result.account) {
    msalApp.setActiveAccount(result.account);
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.setItem(MODE_KEY, "aad");
    const next = safeNext(sessionStorage.getItem(NEXT_KEY));
    sessionStorage.removeItem(NEXT_KEY);
    return next;
  }
  if (!msalApp.getActiveAccount()) {
    const accounts = msalApp.getAllAccounts();
    if (accounts.length) msalApp.setActiveAccount(accounts[0]);
  }
  return null;
}

export function signedIn() {
  const mode = sessionStorage.getItem(MODE_KEY);
  if (mode === "token") return Boolean(sessionStorage.getItem(TOKEN_KEY));
  if (mode === "aad") return Boolean(msalApp && msalApp.getActiveAccount());
  return false;
}

export function who() {
  const mode = sessionStorage.getItem(MODE_KEY);
  if (mode === "aad" && msalApp && msalApp.getActiveAccount()) {
    const account = msalApp.getActiveAccount();
    return account.username || account.name || "Microsoft account";
  }
  if (mode === "token" && sessionStorage.getItem(TOKEN_KEY)) return "a personal access token";
  return null;
}

export function useToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  sessionStorage.setItem(MODE_KEY, "token");
}

export async function signInWithMicrosoft(next) {
  sessionStorage.setItem(NEXT_KEY, safeNext(next));
  await msalApp.loginRedirect({ scopes: config.aad.scopes });
}

/**
 * Forget the session in this tab: the token, or MSAL's accounts and tokens. A token request of a
 * page that was still loading is let finish first (and its token dropped): one that went on
 * after the cache was cleared would find no token and either write new ones into the signed-out
 * tab or send the person back to Microsoft to sign in again.
 */
export async function signOut() {
  session += 1;
  const mode = sessionStorage.getItem(MODE_KEY);
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(MODE_KEY);
  sessionStorage.removeItem(NEXT_KEY);
  if (mode === "aad" && msalApp) {
    await Promise.allSettled([...asking]);
    await msalApp.clearCache();
    msalApp.setActiveAccount(null);
  }
}

/** "Bearer <token>" for the signed-in person; Azure AD tokens are renewed by MSAL as needed. */
export async function authorization() {
  const mode = sessionStorage.getItem(MODE_KEY);
  if (mode === "token") {
    const token = sessionStorage.getItem(TOKEN_KEY);
    return token ? `Bearer ${token}` : null;
  }
  if (mode === "aad" && msalApp) {
    const account = msalApp.getActiveAccount();
    if (!account) return null;
    const asked = session;
    const request = msalApp.acquireTokenSilent({ scopes: config.aad.scopes, account });
    asking.add(request);
    try {
      const result = await request;
      if (asked !== session) throw signedOutError();
      return `Bearer ${result.accessToken}`;
    } catch (error) {
      if (asked !== session) throw signedOutError();
      if (error instanceof window.msal.InteractionRequiredAuthError) {
        sessionStorage.setItem(NEXT_KEY, safeNext(location.pathname + location.search));
        await msalApp.acquireTokenRedirect({ scopes: config.aad.scopes, account });
      }
      throw error;
    } finally {
      asking.delete(request);
    }
  }
  return null;
}

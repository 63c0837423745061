// The console's shell: sign-in, navigation, and one URL per page so that every page can be
// bookmarked and shared (the app serves this page for every /console/... path).

import { ApiError } from "./api.js";
import * as auth from "./auth.js";
import { errorBox, field, h, notice, pageHeader, show } from "./ui.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const whoEl = document.getElementById("who");
const assetBase = new URL(import.meta.url).pathname.replace(/\/app\.js$/, "");

const pages = [
  [/^\/console\/?$/, null, () => Promise.resolve({ default: homePage })],
  [/^\/console\/signin$/, null, () => Promise.resolve({ default: signInPage }), { public: true }],
  [/^\/console\/scenarios$/, "scenarios", () => import("./pages/scenarios.js").then((m) => ({ default: m.listPage }))],
  [/^\/console\/scenarios\/new$/, "scenarios", () => import("./pages/scenarios.js").then((m) => ({ default: m.editPage }))],
  [/^\/console\/scenarios\/([0-9a-fA-F-]{36})$/, "scenarios", () => import("./pages/scenarios.js").then((m) => ({ default: m.editPage }))],
  [/^\/console\/scenarios\/([0-9a-fA-F-]{36})\/try$/, "scenarios", () => import("./pages/try.js")],
  [/^\/console\/scenarios\/([0-9a-fA-F-]{36})\/runs$/, "scenarios", () => import("./pages/runs.js").then((m) => ({ default: m.listPage }))],
  [/^\/console\/scenarios\/([0-9a-fA-F-]{36})\/runs\/([0-9a-fA-F-]{36})$/, "scenarios", () => import("./pages/runs.js").then((m) => ({ default: m.runPage }))],
  [/^\/console\/scenarios\/([0-9a-fA-F-]{36})\/cache$/, "scenarios", () => import("./pages/cache.js")],
  [/^\/console\/tokens$/, "tokens", () => import("./pages/tokens.js")],
  [/^\/console\/apis$/, "apis", () => import("./pages/apis.js").then((m) => ({ default: m.listPage }))],
  [/^\/console\/apis\/([A-Za-z0-9][A-Za-z0-9_.-]{0,63})$/, "apis", () => import("./pages/apis.js").then((m) => ({ default: m.apiPage }))],
  [/^\/console\/apis\/([A-Za-z0-9][A-Za-z0-9_.-]{0,63})\/operations\/([^/]+)$/, "apis", () => import("./pages/apis.js").then((m) => ({ default: m.bindPage }))],
  [/^\/console\/api-keys$/, "apis", () => import("./pages/access.js").then((m) => ({ default: m.apiKeysPage }))],
  [/^\/console\/users$/, "apis", () => import("./pages/access.js").then((m) => ({ default: m.usersPage }))],
];

let current = null; // the AbortController of the page on screen: its polling stops on navigation
let rendered = false; // after the first page, each navigation moves the focus to the new page's heading

export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  render();
}

function setTitle(title) {
  document.title = `${title} · Junction`;
}

function updateChrome(section) {
  const signedIn = auth.signedIn();
  nav.hidden = !signedIn;
  for (const a of nav.querySelectorAll("a")) {
    if (a.dataset.section === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const who = auth.who();
  if (signedIn && who) {
    const out = h("button", { type: "button", class: "link-button", id: "sign-out" }, "Sign out");
    out.addEventListener("click", async () => {
      // Stop the page first: its fetches (a live refresh, the last runs) must not go on while the
      // session is being forgotten, nor land on a page of a session that is gone.
      if (current) current.abort();
      await auth.signOut();
      navigate("/console/signin");
    });
    show(whoEl, h("span", { class: "who-name" }, `Signed in with ${who}`), " ", out);
  } else {
    show(whoEl);
  }
}

async function render() {
  if (current) current.abort();
  current = new AbortController();
  const signal = current.signal;
  const path = location.pathname.replace(/\/+$/, "") || "/console";
  const entry = pages.find(([pattern]) => pattern.test(path === "/console" ? "/console/" : path));
  const section = entry ? entry[1] : null;
  if (entry && !(entry[3] && entry[3].public) && !auth.signedIn()) {
    navigate(`/console/signin?next=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
    return;
  }
  updateChrome(section);
  if (!entry) {
    setTitle("Not found");
    show(main, pageHeader("No such page"), h("p", {}, "The console has no page at this address. "), h("p", {}, h("a", { href: "/console/scenarios" }, "Go to the scenarios")));
    focusHeading();
    return;
  }
  const params = path.match(entry[0]).slice(1).map(decodeURIComponent);
  const query = new URLSearchParams(location.search);
  show(main, h("p", { class: "loading", role: "status" }, "Loading…"));
  try {
    const module = await entry[2]();
    if (signal.aborted) return;
    await module.default({ main, params, query, signal, navigate, setTitle });
    if (rendered && !signal.aborted && !main.contains(document.activeElement)) focusHeading();
    rendered = true;
  } catch (error) {
    if (signal.aborted || (error && error.name === "AbortError")) return;
    show(main, pageHeader("Something went wrong"), errorBox(error));
    focusHeading();
  }
}

function focusHeading() {
  const heading = main.querySelector("h1");
  if (heading) heading.focus({ preventScroll: true });
}

function homePage({ navigate: go }) {
  go(auth.signedIn() ? "/console/scenarios" : "/console/signin", { replace: true });
}

async function signInPage({ main: where, query, setTitle: title }) {
  title("Sign in");
  const next = auth.safeNext(query.get("next"));
  const status = h("div", { class: "status-area", "aria-live": "polite" });
  const tokenInput = h("input", { type: "password", name: "token", autocomplete: "off", spellcheck: "false", required: true, class: "mono" });
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "token-heading" },
    h("h2", { id: "token-heading" }, "With a personal access token"),
    field("Personal access token", tokenInput, "An admin token (jct_…). make run prints one; junction token create makes more. It is kept in this browser tab only, and forgotten when you sign out or close the tab."),
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = tokenInput.value.trim();
    if (!token) return;
    submit.disabled = true;
    show(status, notice("Checking the token…"));
    try {
      const response = await fetch("/management/scenarios?top=1", { headers: { Authorization: `Bearer ${token}`, Accept: "application/json" }, cache: "no-store", credentials: "omit" });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        const err = (body && body.error) || {};
        throw new ApiError(response.status, err.code || `HTTP${response.status}`, err.message || response.statusText);
      }
      auth.useToken(token);
      tokenInput.value = "";
      navigate(next, { replace: true });
    } catch (error) {
      show(status, errorBox(error));
    } finally {
      submit.disabled = false;
    }
  });
  const parts = [pageHeader("Sign in to Junction"), h("p", { class: "lead" }, "The console manages scenarios, runs, tokens and APIs through Junction's management API, with your credentials."), form];
  if (auth.aadOffered()) {
    const button = h("button", { type: "button", class: "primary", id: "aad-sign-in" }, "Sign in with Microsoft");
    button.addEventListener("click", async () => {
      button.disabled = true;
      show(status, notice("Going to the Microsoft sign-in page…"));
      try {
        await auth.signInWithMicrosoft(next);
      } catch (error) {
        button.disabled = false;
        show(status, errorBox(error));
      }
    });
    parts.push(h("section", { class: "card", "aria-labelledby": "aad-heading" }, h("h2", { id: "aad-heading" }, "With your organisation's account"), h("p", {}, "Azure AD (Microsoft Entra ID) administrators of Junction can sign in with their work account."), button));
  }
  parts.push(status);
  show(where, ...parts);
  tokenInput.focus();
}

document.addEventListener("click", (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const a = event.target.closest("a[href]");
  if (!a || a.target || a.hasAttribute("download")) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith("/console/") || url.pathname.startsWith("/console/assets/")) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener("popstate", render);

async function start() {
  auth.readConfig();
  try {
    const next = await auth.initAuth(assetBase);
    if (next) history.replaceState(null, "", next);
  } catch (error) {
    updateChrome(null);
    show(main, pageHeader("Sign-in failed"), errorBox({ code: error.errorCode || "SignInFailed", message: error.errorMessage || error.message || String(error) }), h("p", {}, h("a", { href: "/console/signin" }, "Try again")));
    return;
  }
  render();
}

start();

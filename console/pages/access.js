// Callers of API operations: API keys (with their rulesets) and local users for Basic
// authentication. Create, list, delete; a new key is shown once.

import { call, get } from "../api.js";
import { busy, confirmButton, copyField, errorBox, field, fmtTime, h, notice, show, table } from "../ui.js";
import { apisTabs } from "./apis.js";

function head(title, active) {
  return h("div", { class: "page-head scenario-head" }, h("p", { class: "crumbs" }, h("a", { href: "/console/apis" }, "APIs"), " / ", title), h("h1", { tabindex: "-1" }, title), apisTabs(active));
}

/** "PATH[:METHODS]" per line, as `junction apikey create --rule` takes them. */
export function parseRules(text) {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const cut = line.lastIndexOf(":");
      const methods = cut > 0 ? line.slice(cut + 1).trim() : "";
      if (cut > 0 && /^[A-Za-z*,\s]+$/.test(methods)) {
        const list = methods.split(",").map((m) => m.trim().toUpperCase()).filter(Boolean);
        return { path: line.slice(0, cut).trim(), methods: list.length === 0 || list.includes("*") ? "*" : list };
      }
      return { path: line, methods: "*" };
    });
}

function ruleText(rule) {
  const methods = rule.methods === "*" || !rule.methods ? "*" : rule.methods.join(",");
  return `${rule.path}:${methods}`;
}

export async function apiKeysPage({ main, signal, setTitle }) {
  setTitle("API keys");
  const name = h("input", { type: "text", name: "name", required: true, maxlength: "200", autocomplete: "off" });
  const rules = h("textarea", { name: "ruleset", rows: 4, class: "mono", spellcheck: "false", placeholder: "/api/pet/*:GET\n/api/orders/**" });
  const create = h("button", { type: "submit", class: "primary" }, "Create API key");
  const status = h("div", { "aria-live": "polite" });
  const listArea = h("div");

  const refresh = async () => {
    const keys = (await get("/management/apikeys", { signal })).value;
    const rows = keys.map((key) =>
      h(
        "tr",
        {},
        h("th", { scope: "row", "data-label": "Name" }, key.name),
        h("td", { "data-label": "Ruleset", class: "mono" }, (key.ruleset || []).map(ruleText).join("  ")),
        h("td", { "data-label": "Created" }, fmtTime(key.createdAt)),
        h(
          "td",
          { "data-label": "Delete" },
          confirmButton("Delete", `Delete the key “${key.name}”?`, async () => {
            try {
              await call("DELETE", `/management/apikeys/${key.id}`, { signal });
              show(status, notice(`Deleted “${key.name}”.`, "ok"));
              await refresh();
            } catch (error) {
              show(status, errorBox(error));
            }
          }),
        ),
      ),
    );
    const t = table("API keys", ["Name", "Ruleset", "Created", ""], rows.length ? rows : [h("tr", {}, h("td", { colspan: "4" }, "No API keys."))]);
    t.querySelector("table").classList.add("cards");
    show(listArea, t);
  };

  const form = h(
    "form",
    { class: "card" },
    h("h2", {}, "New API key"),
    field("Name", name, "Passed to the process as #trigger.data.username."),
    field("Ruleset: one rule per line", rules, "PATH[:METHODS]. In a path, * is one segment and ** any number: /api/pet/*:GET allows GET /api/pet/42."),
    h("div", { class: "actions" }, create),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(create, async () => {
      try {
        const result = (await call("POST", "/management/apikeys", { json: { name: name.value.trim(), ruleset: parseRules(rules.value) }, signal })).body;
        name.value = "";
        rules.value = "";
        show(status, h("div", { class: "notice ok new-token" }, h("p", {}, h("strong", {}, `API key “${result.name}” created.`), " Copy it now: it is shown only once."), copyField("The new API key", result.key, { secret: true })));
        await refresh();
      } catch (error) {
        show(status, errorBox(error));
      }
    }, status);
  });
  show(main, head("API keys", "keys"), h("p", { class: "lead" }, "For operations bound with API key authentication: callers send X-Api-Key."), form, status, h("section", { "aria-labelledby": "keys-heading" }, h("h2", { id: "keys-heading" }, "API keys"), listArea));
  await refresh();
}

export async function usersPage({ main, signal, setTitle }) {
  setTitle("Basic users");
  const username = h("input", { type: "text", name: "username", required: true, maxlength: "128", autocomplete: "off" });
  const password = h("input", { type: "password", name: "password", required: true, minlength: "8", maxlength: "1024", autocomplete: "new-password" });
  const create = h("button", { type: "submit", class: "primary" }, "Create user");
  const status = h("div", { "aria-live": "polite" });
  const listArea = h("div");

  const refresh = async () => {
    const users = (await get("/management/users", { signal })).value;
    const rows = users.map((user) =>
      h(
        "tr",
        {},
        h("th", { scope: "row", "data-label": "Username" }, user.username),
        h("td", { "data-label": "Created" }, fmtTime(user.createdAt)),
        h(
          "td",
          { "data-label": "Delete" },
          confirmButton("Delete", `Delete the user “${user.username}”?`, async () => {
            try {
              await call("DELETE", `/management/users/${encodeURIComponent(user.username)}`, { signal });
              show(status, notice(`Deleted “${user.username}”.`, "ok"));
              await refresh();
            } catch (error) {
              show(status, errorBox(error));
            }
          }),
        ),
      ),
    );
    const t = table("Basic users", ["Username", "Created", ""], rows.length ? rows : [h("tr", {}, h("td", { colspan: "3" }, "No users."))]);
    t.querySelector("table").classList.add("cards");
    show(listArea, t);
  };

  const form = h(
    "form",
    { class: "card" },
    h("h2", {}, "New user"),
    field("Username", username, "No ':' (it ends the name in a Basic header)."),
    field("Password", password, "At least 8 characters. Stored as an scrypt hash; nobody can read it back."),
    h("div", { class: "actions" }, create),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(create, async () => {
      try {
        const result = (await call("POST", "/management/users", { json: { username: username.value, password: password.value }, signal })).body;
        username.value = "";
        password.value = "";
        show(status, notice(`User “${result.username}” created.`, "ok"));
        await refresh();
      } catch (error) {
        show(status, errorBox(error));
      }
    }, status);
  });
  show(main, head("Basic users", "users"), h("p", { class: "lead" }, "Local users for operations bound with Basic authentication."), form, status, h("section", { "aria-labelledby": "users-heading" }, h("h2", { id: "users-heading" }, "Users"), listArea));
  await refresh();
}

// Personal access tokens: create one (shown once, with a copy button), list them, revoke one.
// IntegrationHub's "API Token" page, for as many tokens as a team needs.

import { call, get } from "../api.js";
import { busy, confirmButton, copyField, errorBox, field, fmtTime, h, notice, pageHeader, show, table } from "../ui.js";

export default async function tokensPage({ main, signal, setTitle }) {
  setTitle("Tokens");
  const name = h("input", { type: "text", name: "name", required: true, maxlength: "200", autocomplete: "off" });
  const scope = h("select", { name: "scope" }, h("option", { value: "trigger" }, "trigger: call the trigger URLs"), h("option", { value: "admin" }, "admin: the management API and everything else"));
  const scenarioSelect = h("select", { name: "scenarioIds", multiple: true, size: 5 });
  const expiry = h("input", { type: "number", name: "expiresInDays", min: "1", max: "3650", inputmode: "numeric" });
  const create = h("button", { type: "submit", class: "primary" }, "Create token");
  const created = h("div", { "aria-live": "polite" });
  const listArea = h("div");
  const scenarioField = field("Limit to scenarios (optional)", scenarioSelect, "A trigger token may be limited to some scenarios (Ctrl or Cmd + click to pick several); none picked means all. Admin tokens cannot be limited.");

  const names = new Map();
  try {
    const listing = await get("/management/scenarios?top=1000", { signal });
    for (const s of listing.value) {
      names.set(s.id, s.name);
      scenarioSelect.append(h("option", { value: s.id }, s.name));
    }
  } catch (error) {
    scenarioField.append(errorBox(error));
  }
  scope.addEventListener("change", () => {
    scenarioSelect.disabled = scope.value === "admin";
    if (scope.value === "admin") for (const o of scenarioSelect.options) o.selected = false;
  });

  const refresh = async () => {
    const tokens = (await get("/management/tokens", { signal })).value;
    tokens.sort((a, b) => String(b.createdAt || "").localeCompare(String(a.createdAt || "")));
    const rows = tokens.map((t) =>
      h(
        "tr",
        { "data-token": t.id },
        h("th", { scope: "row", "data-label": "Name" }, t.name),
        h("td", { "data-label": "Scope" }, (t.scopes || []).join(", ")),
        h("td", { "data-label": "Scenarios" }, t.scenarioIds && t.scenarioIds.length ? t.scenarioIds.map((id) => names.get(id) || id).join(", ") : "all"),
        h("td", { "data-label": "Created" }, fmtTime(t.createdAt)),
        h("td", { "data-label": "Expires" }, t.expiresAt ? fmtTime(t.expiresAt) : "never"),
        h(
          "td",
          { "data-label": "Revoke" },
          confirmButton("Revoke", `Revoke “${t.name}”? Callers using it get 401 from their next request.`, async () => {
            try {
              await call("DELETE", `/management/tokens/${t.id}`, { signal });
              show(created, notice(`Revoked “${t.name}”.`, "ok"));
              await refresh();
            } catch (error) {
              show(created, errorBox(error));
            }
          }),
        ),
      ),
    );
    const tableEl = table("Personal access tokens", ["Name", "Scope", "Scenarios", "Created", "Expires", ""], rows.length ? rows : [h("tr", {}, h("td", { colspan: "6" }, "No tokens."))]);
    tableEl.querySelector("table").classList.add("cards");
    show(listArea, tableEl);
  };

  const form = h(
    "form",
    { class: "card" },
    h("h2", {}, "New token"),
    field("Name", name, "Who or what uses it: a person, a partner, a service."),
    field("Scope", scope),
    scenarioField,
    field("Expires after (days, optional)", expiry, "Leave empty for a token that does not expire."),
    h("div", { class: "actions" }, create),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = { name: name.value.trim(), scopes: [scope.value] };
    const picked = [...scenarioSelect.selectedOptions].map((o) => o.value);
    if (picked.length && scope.value !== "admin") body.scenarioIds = picked;
    if (expiry.value) body.expiresInDays = Number(expiry.value);
    busy(create, async () => {
      try {
        const result = (await call("POST", "/management/tokens", { json: body, signal })).body;
        name.value = "";
        show(
          created,
          h(
            "div",
            { class: "notice ok new-token" },
            h("p", {}, h("strong", {}, `Token “${result.name}” created.`), " Copy it now: it is shown only once, and Junction keeps only its hash."),
            copyField("The new token", result.token, { secret: true }),
          ),
        );
        created.querySelector("button.copy").focus();
        await refresh();
      } catch (error) {
        show(created, errorBox(error));
      }
    }, created);
  });

  show(main, pageHeader("Personal access tokens"), h("p", { class: "lead" }, "Callers send a token as Authorization: Bearer <token>. Trigger tokens start scenarios and read their cache; admin tokens also manage Junction."), form, created, h("section", { "aria-labelledby": "list-heading" }, h("h2", { id: "list-heading" }, "Tokens"), listArea));
  await refresh();
}

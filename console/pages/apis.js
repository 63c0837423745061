// APIs (Frends' API management view): import an OpenAPI document, see its operations with their
// full method and path, bind one to a scenario (authentication, scopes, CORS, protocols), unbind.
// Route conflicts are shown as the API reports them (409 naming both operations).

import { call, enc, get } from "../api.js";
import { busy, confirmButton, copyField, errorBox, field, fmtTime, h, notice, show, table } from "../ui.js";

export function apisTabs(active) {
  const tabs = [
    ["apis", "/console/apis", "Documents"],
    ["keys", "/console/api-keys", "API keys"],
    ["users", "/console/users", "Basic users"],
  ];
  return h("nav", { class: "tabs", "aria-label": "API pages" }, tabs.map(([key, href, text]) => h("a", { href, "aria-current": key === active ? "page" : null }, text)));
}

function head(title, active, crumbs) {
  return h("div", { class: "page-head scenario-head" }, crumbs ? h("p", { class: "crumbs" }, crumbs) : null, h("h1", { tabindex: "-1" }, title), apisTabs(active));
}

function flash(parts) {
  const text = sessionStorage.getItem("junction.flash");
  if (text) {
    sessionStorage.removeItem("junction.flash");
    parts.push(notice(text, "ok"));
  }
}

function contentTypeOf(text, fileName) {
  if (fileName && /\.json$/i.test(fileName)) return "application/json";
  if (fileName && /\.ya?ml$/i.test(fileName)) return "application/yaml";
  return /^\s*\{/.test(text) ? "application/json" : "application/yaml";
}

export async function listPage({ main, signal, setTitle, navigate }) {
  setTitle("APIs");
  const name = h("input", { type: "text", name: "apiName", required: true, maxlength: "64", autocomplete: "off", pattern: "[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}" });
  const file = h("input", { type: "file", name: "file", accept: ".yaml,.yml,.json,application/json,application/yaml" });
  const text = h("textarea", { name: "document", rows: 10, class: "mono", spellcheck: "false", placeholder: "openapi: 3.0.3\ninfo: {title: Pets, version: '1'}\n…" });
  const submit = h("button", { type: "submit", class: "primary" }, "Import");
  const status = h("div", { "aria-live": "polite" });
  let fileName = null;
  file.addEventListener("change", async () => {
    const picked = file.files && file.files[0];
    if (!picked) return;
    fileName = picked.name;
    text.value = await picked.text();
    if (!name.value) name.value = picked.name.replace(/\.(ya?ml|json)$/i, "").replace(/[^A-Za-z0-9_.-]/g, "-").slice(0, 64);
  });
  text.addEventListener("input", () => (fileName = null));
  const form = h(
    "form",
    { class: "card" },
    h("h2", {}, "Import a document"),
    h("p", { class: "hint" }, "Swagger 2.0, OpenAPI 3.0 or 3.1, as YAML or JSON. Importing again under the same name replaces the document and keeps the bindings of operations that remain."),
    field("API name", name, "1-64 letters, digits, '_', '.' or '-'. It names the API in Junction; callers never see it."),
    field("Upload a file", file),
    field("…or paste the document", text),
    h("div", { class: "actions" }, submit),
    status,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!name.value.trim() || !text.value.trim()) {
      show(status, errorBox({ code: "Missing", message: "Give the API a name and a document (upload or paste)." }));
      return;
    }
    busy(submit, async () => {
      try {
        const result = await call("PUT", `/management/apis/${enc(name.value.trim())}`, { body: text.value, contentType: contentTypeOf(text.value, fileName), signal });
        sessionStorage.setItem("junction.flash", `Imported “${result.body.name}”: ${result.body.operations.length} operation(s).`);
        navigate(`/console/apis/${enc(result.body.name)}`);
      } catch (error) {
        show(status, errorBox(error));
      }
    }, status);
  });
  const apis = (await get("/management/apis", { signal })).value;
  const rows = apis.map((api) =>
    h(
      "tr",
      {},
      h("th", { scope: "row", "data-label": "Name" }, h("a", { href: `/console/apis/${enc(api.name)}` }, api.name)),
      h("td", { "data-label": "Title" }, api.title || "—"),
      h("td", { "data-label": "Version" }, api.version || "—"),
      h("td", { "data-label": "Specification" }, api.specification || "—"),
      h("td", { "data-label": "Imported" }, fmtTime(api.importedAt)),
    ),
  );
  const list = table("Imported APIs", ["Name", "Title", "Version", "Specification", "Imported"], rows.length ? rows : [h("tr", {}, h("td", { colspan: "5" }, "No APIs imported yet."))]);
  list.querySelector("table").classList.add("cards");
  const parts = [head("APIs", "apis")];
  flash(parts);
  show(main, ...parts, h("section", { "aria-labelledby": "apis-heading" }, h("h2", { id: "apis-heading" }, "Imported APIs"), list), form);
}

function bindingSummary(binding, names) {
  if (!binding) return h("span", { class: "muted" }, "not bound");
  const auth = binding.authentication?.type || "none";
  const scenario = names.get(binding.scenarioId) || binding.scenarioId;
  return h("span", {}, "→ ", h("a", { href: `/console/scenarios/${binding.scenarioId}` }, scenario), ` · ${auth}`);
}

async function scenarioNames(signal) {
  const names = new Map();
  const listing = await get("/management/scenarios?top=1000", { signal });
  for (const s of listing.value) names.set(s.id, s.name);
  return { names, scenarios: listing.value };
}

export async function apiPage({ main, params, signal, setTitle, navigate }) {
  const apiName = params[0];
  const [view, { names }] = await Promise.all([call("GET", `/management/apis/${enc(apiName)}`, { signal }), scenarioNames(signal)]);
  const api = view.body;
  setTitle(`API ${api.name}`);
  const status = h("div", { "aria-live": "polite" });
  const rows = api.operations.map((op) => {
    const bindHref = `/console/apis/${enc(api.name)}/operations/${enc(op.operationId || "")}`;
    const actions = [];
    if (op.operationId) actions.push(h("a", { href: bindHref, class: "button" }, op.binding ? "Edit binding" : "Bind"));
    if (op.binding) {
      actions.push(
        confirmButton("Unbind", `Stop serving ${op.method} ${op.path}?`, async () => {
          try {
            await call("DELETE", `/management/apis/${enc(api.name)}/operations/${enc(op.operationId)}`, { signal });
            sessionStorage.setItem("junction.flash", `Unbound ${op.operationId}.`);
            navigate(location.pathname, { replace: true });
          } catch (error) {
            show(status, errorBox(error));
          }
        }),
      );
    }
    return h(
      "tr",
      { "data-operation": op.operationId || "" },
      h("th", { scope: "row", "data-label": "Operation", class: "mono" }, op.operationId || "(no operationId)"),
      h("td", { "data-label": "Method and path", class: "mono" }, `${op.method} ${op.path}`),
      h("td", { "data-label": "Summary" }, op.summary || "—"),
      h("td", { "data-label": "Scopes" }, (op.scopes || []).join(" ") || "—"),
      h("td", { "data-label": "Binding" }, bindingSummary(op.binding, names)),
      h("td", { "data-label": "Actions" }, h("div", { class: "actions" }, actions)),
    );
  });
  const ops = table(`Operations of ${api.name}`, ["Operation", "Method and path", "Summary", "Scopes", "Binding", ""], rows);
  ops.querySelector("table").classList.add("cards");
  const remove = confirmButton("Delete API", `Delete ${api.name} and every binding of its operations?`, async () => {
    try {
      await call("DELETE", `/management/apis/${enc(api.name)}`, { ifMatch: view.etag, signal });
      sessionStorage.setItem("junction.flash", `Deleted ${api.name}.`);
      navigate("/console/apis");
    } catch (error) {
      show(status, errorBox(error));
    }
  });
  const parts = [head(`API ${api.name}`, "apis", [h("a", { href: "/console/apis" }, "APIs"), " / ", api.name])];
  flash(parts);
  show(
    main,
    ...parts,
    h("p", { class: "lead" }, `${api.title || ""} ${api.version ? `version ${api.version}` : ""} · ${api.specification || ""} · imported ${fmtTime(api.importedAt)}`),
    h("section", { "aria-labelledby": "ops-heading" }, h("h2", { id: "ops-heading" }, "Operations"), h("p", { class: "hint" }, "Only bound operations are served, at their method and full path, each with its own authentication."), ops),
    status,
    h("section", { class: "card danger-zone" }, h("h2", {}, "Delete"), remove),
  );
}

function splitList(value) {
  return value.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean);
}

function splitPems(value) {
  return (value.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) || []).map((pem) => `${pem.trim()}\n`);
}

function keptNote(binding) {
  const kept = [];
  if (Array.isArray(binding?.ipAllowList) && binding.ipAllowList.length) kept.push(`callers only from ${binding.ipAllowList.join(", ")}`);
  const limit = binding?.rateLimit;
  if (limit && limit.requestsPerMinute) kept.push(`at most ${limit.requestsPerMinute} requests a minute${limit.burst ? ` (bursts of ${limit.burst})` : ""}${limit.perCredential ? " per credential" : ""}`);
  if (binding?.signature) kept.push(`requests signed (${binding.signature.scheme}, ${binding.signature.header})`);
  if (binding?.respond === "async") kept.push("answers 202 with a status URL (respond async)");
  return kept.length ? h("p", { class: "hint kept-settings" }, `Set through the API and kept when you save: ${kept.join("; ")}.`) : null;
}

export async function bindPage({ main, params, signal, setTitle, navigate }) {
  const [apiName, operationId] = params;
  const [view, { scenarios }] = await Promise.all([get(`/management/apis/${enc(apiName)}/operations/${enc(operationId)}`, { signal }), scenarioNames(signal)]);
  setTitle(`Bind ${operationId}`);
  const current = view.binding;
  const auth = current?.authentication || { type: "none" };
  const scenario = h("select", { name: "scenarioId", required: true }, h("option", { value: "" }, "Choose a scenario…"), scenarios.map((s) => h("option", { value: s.id, selected: current?.scenarioId === s.id }, s.name)));
  const authType = h(
    "select",
    { name: "authType" },
    [
      ["none", "None: anyone may call it"],
      ["basic", "Basic: a local user (name and password)"],
      ["certificate", "Certificate: a client certificate from a trusted issuer"],
      ["apiKey", "API key: X-Api-Key, checked against the key's ruleset"],
      ["oauth2", "OAuth2: an Azure AD (or listed issuer's) access token with a scope"],
    ].map(([value, label]) => h("option", { value, selected: auth.type === value }, label)),
  );
  const scopes = h("input", { type: "text", name: "scopes", class: "mono", value: (auth.scopes || []).join(" "), autocomplete: "off" });
  const anyTenantUser = h("input", { type: "checkbox", name: "anyTenantUser", checked: auth.anyTenantUser });
  const issuer = h("input", { type: "url", name: "issuer", value: auth.issuer || "", autocomplete: "off" });
  const audience = h("input", { type: "text", name: "audience", value: auth.audience || "", autocomplete: "off" });
  const trusted = h("textarea", { name: "trustedIssuers", rows: 6, class: "mono", spellcheck: "false" }, (auth.trustedIssuers || []).join(""));
  const http = h("input", { type: "checkbox", name: "http", checked: !current || (current.allowedProtocols || []).includes("http") });
  const https = h("input", { type: "checkbox", name: "https", checked: !current || (current.allowedProtocols || []).includes("https") });
  const origins = h("input", { type: "text", name: "origins", value: (current?.cors?.allowedOrigins || []).join(";"), autocomplete: "off", placeholder: "https://app.example;https://other.example" });
  const credentials = h("input", { type: "checkbox", name: "allowCredentials", checked: current?.cors?.allowCredentials });
  const save = h("button", { type: "submit", class: "primary" }, current ? "Save binding" : "Bind");
  const status = h("div", { "aria-live": "polite" });

  const oauthFields = h("div", {}, field("Scopes (any one is enough)", scopes, "Separated by spaces. Empty means the scopes the document gives the operation."), field("Any user of the tenant (outside JUNCTION_AAD_GROUP_ID)", anyTenantUser), field("Issuer (optional: another OpenID Connect issuer listed in JUNCTION_OAUTH_ISSUERS)", issuer), field("Audience (with an issuer)", audience));
  const certFields = h("div", {}, field("Trusted issuers (PEM certificates)", trusted, "The CA certificates client certificates must chain to, one or more PEM blocks."));
  const toggle = () => {
    oauthFields.hidden = authType.value !== "oauth2";
    certFields.hidden = authType.value !== "certificate";
  };
  authType.addEventListener("change", toggle);
  toggle();

  const form = h(
    "form",
    { class: "card" },
    h("h2", {}, "Binding"),
    field("Scenario", scenario, "The scenario that runs for each call; the caller gets its result."),
    field("Authentication", authType),
    oauthFields,
    certFields,
    h("fieldset", { class: "plain" }, h("legend", {}, "Allowed protocols"), field("HTTPS", https), field("HTTP", http)),
    keptNote(current),
    field("CORS: allowed origins (optional)", origins, "Separated by ; or , — * allows every origin (never with credentials). Empty: no CORS."),
    field("CORS: allow credentials", credentials),
    h("div", { class: "actions" }, save),
    status,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = { scenarioId: scenario.value, authentication: { type: authType.value } };
    if (authType.value === "oauth2") {
      if (scopes.value.trim()) body.authentication.scopes = splitList(scopes.value);
      if (anyTenantUser.checked) body.authentication.anyTenantUser = true;
      if (issuer.value.trim()) body.authentication.issuer = issuer.value.trim();
      if (audience.value.trim()) body.authentication.audience = audience.value.trim();
    }
    if (authType.value === "certificate") body.authentication.trustedIssuers = splitPems(trusted.value);
    // Sent as ticked, even with none: no list would mean both, the opposite of what was asked
    // (the API refuses an empty one and says why).
    body.allowedProtocols = [https.checked && "https", http.checked && "http"].filter(Boolean);
    if (origins.value.trim()) body.cors = { allowedOrigins: origins.value.trim(), allowCredentials: credentials.checked };
    if (current?.boundAt) body.boundAt = current.boundAt;
    // Set through the API and not on this form: a PUT replaces the binding, so send them back.
    for (const kept of ["ipAllowList", "rateLimit", "signature", "respond"]) if (current && current[kept] != null) body[kept] = current[kept];
    busy(save, async () => {
      try {
        await call("PUT", `/management/apis/${enc(apiName)}/operations/${enc(operationId)}`, { json: body, signal });
        sessionStorage.setItem("junction.flash", `Bound ${operationId}: ${view.method} ${view.path} now runs the scenario.`);
        navigate(`/console/apis/${enc(apiName)}`);
      } catch (error) {
        show(status, errorBox(error));
      }
    }, status);
  });

  const url = `${location.origin}${view.path}`;
  show(
    main,
    head(`Bind ${operationId}`, "apis", [h("a", { href: "/console/apis" }, "APIs"), " / ", h("a", { href: `/console/apis/${enc(apiName)}` }, apiName), " / ", operationId]),
    h("p", { class: "lead" }, h("code", {}, `${view.method} ${view.path}`)),
    copyField("Its URL (path parameters in braces)", url),
    form,
  );
}

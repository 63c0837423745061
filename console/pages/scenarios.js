// Scenarios: the list (filterable, with each one's last run) and the editor, which follows
// IntegrationHub's "Advanced edit": name, the two external-trigger checkboxes (with the trigger
// URLs once enabled), source, schedule (with its next due times), and the process as JSON.

import { ApiError, call, enc, get } from "../api.js";
import { parseWithPositions, pathKey, stepPathOf, lineColumn, JsonSyntaxError } from "../jsonpos.js";
import { busy, confirmButton, copyField, errorBox, field, h, notice, pageHeader, show, statusBadge, table, yesNo } from "../ui.js";
import { scenarioHeader } from "./common.js";

const PAGE_SIZE = 100;

export const EXAMPLE_PROCESS = {
  steps: [
    { type: "transform", id: "received", expression: "data[0].Body" },
    { type: "cache", key: "last", value: "#steps.received" },
    { type: "return", value: { jmespath: "{stored: steps.received}" } },
  ],
};

// ----------------------------------------------------------------------------------------------
// The list
// ----------------------------------------------------------------------------------------------

export async function listPage({ main, query, signal, setTitle }) {
  setTitle("Scenarios");
  const filterInput = h("input", { type: "search", name: "q", value: query.get("q") || "", autocomplete: "off" });
  const onlyEnabled = h("input", { type: "checkbox", name: "enabled", checked: query.get("enabled") === "1" });
  const count = h("p", { class: "count", "aria-live": "polite" });
  const body = h("tbody");
  const more = h("div", { class: "more" });
  const status = h("div", { class: "status-area", "aria-live": "polite" });
  const scenarios = [];
  const lastRun = new Map();

  const applyFilter = () => {
    const text = filterInput.value.trim().toLowerCase();
    const params = new URLSearchParams();
    if (text) params.set("q", filterInput.value.trim());
    if (onlyEnabled.checked) params.set("enabled", "1");
    history.replaceState(null, "", `/console/scenarios${params.toString() ? `?${params}` : ""}`);
    const shown = scenarios.filter(
      (s) => (!text || String(s.name).toLowerCase().includes(text) || s.id.includes(text)) && (!onlyEnabled.checked || s.externalTriggers?.enabled),
    );
    body.replaceChildren(...shown.map(row));
    count.textContent = `${shown.length} of ${scenarios.length} scenario${scenarios.length === 1 ? "" : "s"}`;
    if (!scenarios.length) {
      body.replaceChildren(h("tr", {}, h("td", { colspan: "6" }, "No scenarios yet. ", h("a", { href: "/console/scenarios/new" }, "Create the first one"), ".")));
    }
  };

  const row = (s) => {
    const runCell = h("td", { "data-label": "Last run" });
    fillLastRun(runCell, s.id);
    const base = `/console/scenarios/${s.id}`;
    return h(
      "tr",
      { "data-scenario": s.id },
      h("th", { scope: "row", "data-label": "Name" }, h("a", { href: base }, s.name)),
      h("td", { "data-label": "External triggers" }, yesNo(s.externalTriggers?.enabled)),
      h("td", { "data-label": "Anonymous" }, yesNo(s.externalTriggers?.allowAnonymous)),
      h("td", { "data-label": "Schedule" }, h("span", { class: "mono" }, s.schedule || "—")),
      runCell,
      h(
        "td",
        { "data-label": "Pages" },
        h(
          "span",
          { class: "row-links" },
          h("a", { href: `${base}/try`, "aria-label": `Try it: ${s.name}` }, "Try it"),
          " ",
          h("a", { href: `${base}/runs`, "aria-label": `Runs: ${s.name}` }, "Runs"),
          " ",
          h("a", { href: `${base}/cache`, "aria-label": `Cache: ${s.name}` }, "Cache"),
        ),
      ),
    );
  };

  const fillLastRun = (cell, id) => {
    const known = lastRun.get(id);
    if (known === undefined) {
      cell.textContent = "…";
      return;
    }
    if (known === null) cell.textContent = "never run";
    else if (known.lookupError) cell.append(h("span", { class: "muted", title: known.lookupError }, "unknown"));
    else cell.replaceChildren(h("a", { href: `/console/scenarios/${id}/runs/${known.id}` }, statusBadge(known.status)));
  };

  const loadLastRuns = async (items) => {
    const queue = [...items];
    const worker = async () => {
      while (queue.length && !signal.aborted) {
        const s = queue.shift();
        try {
          const runs = await get(`/management/scenarios/${s.id}/runs?top=1`, { signal });
          lastRun.set(s.id, runs.value[0] || null);
        } catch (error) {
          if (signal.aborted) return;
          lastRun.set(s.id, { lookupError: `${error.code}: ${error.message}` });
        }
        const cell = body.querySelector(`tr[data-scenario="${s.id}"] td[data-label="Last run"]`);
        if (cell) {
          cell.replaceChildren();
          fillLastRun(cell, s.id);
        }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
  };

  const load = async (url) => {
    const page = await get(url, { signal });
    scenarios.push(...page.value);
    applyFilter();
    more.replaceChildren();
    if (page.nextLink) {
      const next = new URL(page.nextLink);
      const button = h("button", { type: "button" }, "Load more scenarios");
      button.addEventListener("click", () => busy(button, () => load(`/management/scenarios${next.search}`).catch((e) => show(status, errorBox(e))), status));
      more.append(button);
    }
    loadLastRuns(page.value);
  };

  filterInput.addEventListener("input", applyFilter);
  onlyEnabled.addEventListener("change", applyFilter);
  show(
    main,
    pageHeader("Scenarios", h("a", { href: "/console/scenarios/new", class: "button primary" }, "New scenario")),
    h("p", { class: "lead" }, "A scenario is a process Junction runs when it is called at its trigger URL (or on its schedule). Open one to edit it; its Try it tab sends a test request and shows the run."),
    h(
      "div",
      { class: "filters", role: "search" },
      field("Filter by name or id", filterInput),
      field("Only scenarios with external triggers enabled", onlyEnabled),
    ),
    count,
    h(
      "div",
      { class: "table-wrap", role: "region", "aria-label": "Scenarios", tabindex: "0" },
      h(
        "table",
        { class: "scenarios" },
        h("caption", { class: "visually-hidden" }, "Scenarios"),
        h("thead", {}, h("tr", {}, ["Name", "External triggers", "Anonymous", "Schedule", "Last run", "Pages"].map((t) => h("th", { scope: "col" }, t)))),
        body,
      ),
    ),
    more,
    status,
  );
  await load(`/management/scenarios?top=${PAGE_SIZE}`);
}

// ----------------------------------------------------------------------------------------------
// The editor
// ----------------------------------------------------------------------------------------------

function curlLine(scenario) {
  const auth = scenario.externalTriggers?.allowAnonymous ? "" : '-H "Authorization: Bearer $JUNCTION_TOKEN" ';
  return `curl -i -X POST ${auth}-H "Content-Type: application/json" -d '{"orderId": 42}' ${scenario.triggerUrls.post}`;
}

function triggerUrlsSection(scenario) {
  const urls = scenario.triggerUrls || {};
  const anonymous = scenario.externalTriggers?.allowAnonymous;
  return h(
    "section",
    { class: "trigger-urls", "aria-labelledby": "urls-heading" },
    h("h3", { id: "urls-heading" }, "Trigger URLs"),
    h("p", { class: "hint" }, anonymous ? "Anyone with these URLs can call them." : "Callers send Authorization: Bearer <token> (a trigger or admin token, or Azure AD)."),
    copyField("GET URL (starts a run without a body)", urls.get),
    copyField("POST with curl (the body becomes data[0].Body)", curlLine(scenario), { multiline: true }),
    copyField("GetCacheData URL (append the key as URL-encoded JSON, e.g. %22last%22)", urls.cache),
  );
}

/** What the API can set on the triggers beyond the two checkboxes, said so that it is not a surprise. */
function keptSettings(triggers) {
  const kept = [];
  const allow = triggers?.ipAllowList;
  if (Array.isArray(allow) && allow.length) kept.push(`callers only from ${allow.join(", ")}`);
  const limit = triggers?.rateLimit;
  if (limit && limit.requestsPerMinute) kept.push(`at most ${limit.requestsPerMinute} requests a minute${limit.burst ? ` (bursts of ${limit.burst})` : ""}${limit.perCredential ? " per credential" : ""}`);
  if (triggers?.signature) kept.push(`requests signed (${triggers.signature.scheme}, ${triggers.signature.header})`);
  return kept.length ? h("p", { class: "hint kept-settings" }, `Set through the API and kept when you save: ${kept.join("; ")}.`) : null;
}

function describeStep(step) {
  if (!step || typeof step !== "object") return "not an object";
  const parts = [String(step.type || "?")];
  if (step.id) parts.push(`“${step.id}”`);
  if (step.type === "transform" && typeof step.expression === "string") parts.push(step.expression);
  if (step.type === "decision" && typeof step.if === "string") parts.push(`if ${step.if}`);
  if (step.type === "http" && step.url) parts.push(`${step.method || "GET"} ${step.url}`);
  if (step.type === "throw" && step.message) parts.push(step.message);
  return parts.join(" · ").slice(0, 160);
}

/** The steps as a nested list: each names its place (steps[1].then[0]) and jumps to its text. */
function outline(process, jump) {
  const list = (steps, path) =>
    h(
      "ol",
      {},
      steps.map((step, index) => {
        const here = [...path, index];
        const label = here.map((p) => (typeof p === "number" ? `[${p}]` : `.${p}`)).join("").replace(/^\./, "");
        const children = [];
        for (const branch of ["then", "else"]) {
          if (step && Array.isArray(step[branch])) children.push(h("div", { class: "branch" }, h("span", { class: "branch-name" }, branch), list(step[branch], [...here, branch])));
        }
        return h(
          "li",
          { "data-step": pathKey(here) },
          h("button", { type: "button", class: "step-link", onclick: () => jump(here) }, h("span", { class: "step-path mono" }, label), " ", describeStep(step)),
          h("p", { class: "step-error", hidden: true }),
          children,
        );
      }),
    );
  return process && Array.isArray(process.steps) && process.steps.length ? list(process.steps, ["steps"]) : h("p", { class: "muted" }, "No steps yet.");
}

export async function editPage({ main, params, signal, setTitle, navigate }) {
  const id = params[0] || null;
  let scenario = null;
  if (id) {
    const loaded = await call("GET", `/management/scenarios/${enc(id)}`, { signal });
    scenario = { ...loaded.body, etag: loaded.etag || loaded.body.etag };
  }
  setTitle(scenario ? scenario.name : "New scenario");

  const name = h("input", { type: "text", name: "name", required: true, maxlength: "200", autocomplete: "off" });
  const description = h("textarea", { name: "description", rows: 2, maxlength: "4000" });
  const enabled = h("input", { type: "checkbox", name: "enabled" });
  const anonymous = h("input", { type: "checkbox", name: "allowAnonymous" });
  const sourceMethod = h("select", { name: "sourceMethod" }, h("option", { value: "GET" }, "GET"), h("option", { value: "POST" }, "POST"));
  const sourceUrl = h("input", { type: "url", name: "sourceUrl", autocomplete: "off", placeholder: "https://erp.example.com/changes" });
  const sourceHeaders = h("textarea", { name: "sourceHeaders", rows: 2, class: "mono", spellcheck: "false", placeholder: '{"Accept": "application/json"}' });
  const schedule = h("input", { type: "text", name: "schedule", class: "mono", autocomplete: "off", placeholder: "0 */5 * * * *" });
  const dueTimes = h("div", { class: "due-times", "aria-live": "polite" });
  const processText = h("textarea", { name: "process", rows: 18, class: "mono editor", spellcheck: "false", wrap: "off" });
  const processStatus = h("div", { class: "editor-status", "aria-live": "polite" });
  const steps = h("div", { class: "outline" });
  const urls = h("div");
  const formStatus = h("div", { class: "status-area", "aria-live": "polite" });
  const save = h("button", { type: "submit", class: "primary" }, scenario ? "Save" : "Create scenario");

  const fill = (s) => {
    name.value = s ? s.name : "";
    description.value = (s && s.description) || "";
    enabled.checked = Boolean(s && s.externalTriggers?.enabled);
    anonymous.checked = Boolean(s && s.externalTriggers?.allowAnonymous);
    sourceMethod.value = (s && s.source?.method) || "GET";
    sourceUrl.value = (s && s.source?.url) || "";
    sourceHeaders.value = s && s.source?.headers ? JSON.stringify(s.source.headers) : "";
    schedule.value = (s && s.schedule) || "";
    processText.value = JSON.stringify(s ? s.process : EXAMPLE_PROCESS, null, 2);
    anonymous.disabled = !enabled.checked;
    show(
      urls,
      s && s.externalTriggers?.enabled ? triggerUrlsSection(s) : notice(s ? "Enable external triggers and save to get the trigger URLs." : "Create the scenario to get its trigger URLs."),
      s ? keptSettings(s.externalTriggers) : null,
    );
    refreshOutline();
    previewSchedule();
  };

  // -- the process editor and its outline --
  let spans = new Map();
  const jump = (path) => {
    const span = spans.get(pathKey(path));
    if (!span) return;
    processText.focus();
    processText.setSelectionRange(span.start, span.end);
    const { line } = lineColumn(processText.value, span.start);
    const lineHeight = processText.scrollHeight / Math.max(1, processText.value.split("\n").length);
    processText.scrollTop = Math.max(0, (line - 3) * lineHeight);
  };
  const refreshOutline = () => {
    try {
      const parsed = parseWithPositions(processText.value);
      spans = parsed.spans;
      show(steps, outline(parsed.value, jump));
      processText.removeAttribute("aria-invalid");
      show(processStatus);
      return parsed.value;
    } catch (error) {
      if (!(error instanceof JsonSyntaxError)) throw error;
      processText.setAttribute("aria-invalid", "true");
      show(processStatus, errorBox({ code: "InvalidJson", message: `The process is not valid JSON: ${error.message}` }));
      return undefined;
    }
  };
  let outlineTimer = null;
  processText.addEventListener("input", () => {
    clearTimeout(outlineTimer);
    outlineTimer = setTimeout(refreshOutline, 300);
  });
  const format = h("button", { type: "button" }, "Format JSON");
  format.addEventListener("click", () => {
    const value = refreshOutline();
    if (value !== undefined) {
      processText.value = JSON.stringify(value, null, 2);
      refreshOutline();
    }
  });

  // -- schedule preview --
  let scheduleTimer = null;
  const previewSchedule = () => {
    clearTimeout(scheduleTimer);
    const expression = schedule.value.trim();
    if (!expression) {
      show(dueTimes, h("p", { class: "hint" }, "No schedule: the scenario runs only when called."));
      return;
    }
    scheduleTimer = setTimeout(async () => {
      try {
        const answer = await get(`/console/api/schedule?expression=${enc(expression)}`, { anonymous: true, signal });
        if (schedule.value.trim() !== expression) return;
        show(
          dueTimes,
          h("p", { class: "hint" }, "Next due times (UTC, and your time):"),
          h("ol", { class: "due-list" }, answer.next.map((t) => h("li", {}, h("time", { datetime: t }, t.replace("T", " ").replace("Z", " UTC")), h("span", { class: "muted" }, ` · ${new Date(t).toLocaleString()}`)))),
        );
        schedule.removeAttribute("aria-invalid");
      } catch (error) {
        if (signal.aborted || schedule.value.trim() !== expression) return;
        schedule.setAttribute("aria-invalid", "true");
        show(dueTimes, errorBox(error));
      }
    }, 350);
  };
  schedule.addEventListener("input", previewSchedule);
  enabled.addEventListener("change", () => {
    anonymous.disabled = !enabled.checked;
    if (!enabled.checked) anonymous.checked = false;
  });

  // -- errors placed where they belong --
  const fieldErrors = [];
  const clearErrors = () => {
    for (const el of fieldErrors.splice(0)) el.remove();
    for (const el of main.querySelectorAll("[aria-invalid]")) if (el !== schedule) el.removeAttribute("aria-invalid");
    for (const li of steps.querySelectorAll("li.has-error")) {
      li.classList.remove("has-error");
      const p = li.querySelector(":scope > .step-error");
      p.hidden = true;
      p.textContent = "";
    }
    show(formStatus);
  };
  const fieldError = (control, error) => {
    control.setAttribute("aria-invalid", "true");
    const box = errorBox(error);
    box.classList.add("field-error");
    control.closest(".field").append(box);
    fieldErrors.push(box);
  };
  const showSaveError = (error) => {
    if (error instanceof ApiError && error.status === 412) {
      const reload = h("button", { type: "button", class: "primary" }, "Reload the scenario");
      reload.addEventListener("click", () => busy(reload, async () => {
        const loaded = await call("GET", `/management/scenarios/${enc(scenario.id)}`, { signal });
        scenario = { ...loaded.body, etag: loaded.etag || loaded.body.etag };
        fill(scenario);
        show(formStatus, notice("Reloaded: this is the scenario as it is now. Your changes were discarded.", "ok"));
      }));
      show(
        formStatus,
        errorBox(error, h("div", { class: "conflict" }, h("p", {}, "This scenario was changed meanwhile (by someone else, or in another tab). Reload it to see the current version; your changes here will be replaced."), reload)),
      );
      formStatus.querySelector(".error").classList.add("conflict-error");
      reload.focus();
      return;
    }
    const message = (error && error.message) || "";
    const stepPath = error instanceof ApiError && error.status === 400 ? stepPathOf(message) : null;
    if (stepPath) {
      refreshOutline();
      const li = steps.querySelector(`li[data-step='${pathKey(stepPath)}']`);
      const span = spans.get(pathKey(stepPath));
      const where = span ? ` (line ${lineColumn(processText.value, span.start).line})` : "";
      processText.setAttribute("aria-invalid", "true");
      if (li) {
        li.classList.add("has-error");
        const p = li.querySelector(":scope > .step-error");
        p.textContent = `${error.code}: ${message}`;
        p.hidden = false;
      }
      show(processStatus, errorBox(error, h("p", {}, `At step ${stepPath.map((p) => (typeof p === "number" ? `[${p}]` : `.${p}`)).join("").replace(/^\./, "")}${where}. `, h("button", { type: "button", class: "link-button", onclick: () => jump(stepPath) }, "Show it in the editor"))));
      processStatus.querySelector(".error").classList.add("step-error-box");
      jump(stepPath);
      return;
    }
    const placed = [
      [/^(scenario\.)?name\b/, name],
      [/^(scenario\.)?description\b/, description],
      [/^(scenario\.)?schedule\b|InvalidSchedule/, schedule],
      [/^(scenario\.)?source\b|source\.url/, sourceUrl],
    ].find(([pattern]) => pattern.test(message) || pattern.test(error.code || ""));
    if (placed) fieldError(placed[1], error);
    show(formStatus, errorBox(error));
  };

  const documentFromForm = () => {
    const process = refreshOutline();
    if (process === undefined) return null;
    // Settings the form does not show (an address allow-list, a rate limit) are sent back as
    // stored: a PUT replaces the scenario, and an edit here must not drop them.
    const triggers = { ...(scenario?.externalTriggers || {}), enabled: enabled.checked, allowAnonymous: enabled.checked && anonymous.checked };
    const doc = { name: name.value.trim(), externalTriggers: triggers, process };
    if (description.value.trim()) doc.description = description.value;
    if (schedule.value.trim()) doc.schedule = schedule.value.trim();
    if (sourceUrl.value.trim()) {
      doc.source = { type: "http", method: sourceMethod.value, url: sourceUrl.value.trim() };
      if (sourceHeaders.value.trim()) {
        try {
          doc.source.headers = JSON.parse(sourceHeaders.value);
        } catch (error) {
          fieldError(sourceHeaders, { code: "InvalidJson", message: `Source headers are not valid JSON: ${error.message}` });
          return null;
        }
      }
    }
    return doc;
  };

  const form = h(
    "form",
    { class: "editor-form", novalidate: true },
    h("section", { class: "card" }, h("h2", {}, "Scenario"), field("Name", name), field("Description (optional)", description)),
    h(
      "fieldset",
      { class: "card" },
      h("legend", {}, "External triggers"),
      field("Enable external triggers", enabled, "Lets callers start this scenario at its Accept URL and read its cache at GetCacheData."),
      field("Allow anonymous triggers", anonymous, "Callers need no token at all. Only with external triggers enabled."),
      urls,
    ),
    h(
      "fieldset",
      { class: "card" },
      h("legend", {}, "Source (optional)"),
      h("p", { class: "hint" }, "Polled when a run has no request body (a GET or a scheduled run); its answer becomes data[0].Body."),
      h("div", { class: "row" }, field("Method", sourceMethod), field("URL", sourceUrl)),
      field("Headers (JSON object, optional)", sourceHeaders),
    ),
    h("section", { class: "card" }, h("h2", {}, "Schedule (optional)"), field("NCRONTAB schedule", schedule, "Six fields: second minute hour day month day-of-week, in UTC. 0 */5 * * * * is every five minutes."), dueTimes),
    h(
      "section",
      { class: "card process" },
      h("h2", {}, "Process"),
      h("p", { class: "hint" }, "The steps as JSON: transform, decision, cache, http, return, intermediateReturn, throw. The process is checked when you save; a problem is shown at the step it names."),
      h("div", { class: "process-grid" }, h("div", {}, field("Process (JSON)", processText), h("div", { class: "actions" }, format), processStatus), h("div", { class: "outline-wrap" }, h("h3", {}, "Steps"), steps)),
    ),
    h("div", { class: "actions sticky-actions" }, save, formStatus),
  );

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(outlineTimer); // the outline is rebuilt now; a late rebuild would wipe the errors shown below
    clearErrors();
    const doc = documentFromForm();
    if (!doc) return;
    busy(save, async () => {
      try {
        if (scenario) {
          const result = await call("PUT", `/management/scenarios/${enc(scenario.id)}`, { json: doc, ifMatch: scenario.etag, signal });
          scenario = { ...result.body, etag: result.etag || result.body.etag };
          fill(scenario);
          setTitle(scenario.name);
          show(formStatus, notice(`Saved at ${new Date().toLocaleTimeString()}.`, "ok"));
        } else {
          const result = await call("POST", "/management/scenarios", { json: doc, signal });
          sessionStorage.setItem("junction.flash", "Scenario created.");
          navigate(`/console/scenarios/${result.body.id}`, { replace: true });
        }
      } catch (error) {
        if (error && error.name === "AbortError") return;
        showSaveError(error);
      }
    }, formStatus);
  });

  const parts = [];
  if (scenario) {
    parts.push(scenarioHeader(scenario, "edit", "Edit scenario"));
    const flash = sessionStorage.getItem("junction.flash");
    if (flash) {
      sessionStorage.removeItem("junction.flash");
      parts.push(notice(flash, "ok"));
    }
  } else {
    parts.push(h("div", { class: "page-head" }, h("p", { class: "crumbs" }, h("a", { href: "/console/scenarios" }, "Scenarios"), " / new"), h("h1", { tabindex: "-1" }, "New scenario")));
    parts.push(h("p", { class: "lead" }, "The example process below caches what each request sends under the key \"last\" and returns it. Enable external triggers to call it."));
  }
  parts.push(form);
  if (scenario) {
    const remove = confirmButton("Delete", "Delete this scenario? Callers of its URLs get 404 from now on.", async () => {
      try {
        await call("DELETE", `/management/scenarios/${enc(scenario.id)}`, { ifMatch: scenario.etag, signal });
        navigate("/console/scenarios");
      } catch (error) {
        showSaveError(error);
      }
    });
    parts.push(h("section", { class: "card danger-zone" }, h("h2", {}, "Delete"), remove));
  }
  show(main, ...parts);
  fill(scenario);
}

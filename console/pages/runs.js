// Runs: a scenario's runs newest first, a page at a time, and one run with its steps on a
// timeline; both refresh while a run is queued or running.

import { enc, get } from "../api.js";
import { errorBox, fmtDuration, fmtTime, h, jsonBlock, show, statusBadge } from "../ui.js";
import { loadScenario, scenarioHeader } from "./common.js";

const PAGE_SIZE = 20;
const ACTIVE = new Set(["queued", "running"]);

function triggerSummary(trigger) {
  if (!trigger || typeof trigger !== "object") return "—";
  const caller = trigger.caller ? trigger.caller.name || trigger.caller.kind : null;
  const parts = [trigger.type || "?"];
  if (trigger.method) parts.push(trigger.method);
  if (trigger.contentType) parts.push(trigger.contentType);
  if (trigger.bodyBytes) parts.push(`${trigger.bodyBytes} bytes`);
  if (trigger.dueAt) parts.push(`due ${trigger.dueAt}`);
  if (trigger.operationId) parts.push(trigger.operationId);
  if (caller) parts.push(`by ${caller}`);
  return parts.join(" · ");
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    if (signal) signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); });
  });
}

export async function listPage({ main, params, query, signal, setTitle }) {
  const scenario = await loadScenario(params[0], signal);
  setTitle(`Runs of ${scenario.name}`);
  const skiptoken = query.get("skiptoken");
  const body = h("tbody");
  const pager = h("div", { class: "pager" });
  const state = h("p", { class: "count", "aria-live": "polite" });
  const errors = h("div");
  const base = `/console/scenarios/${scenario.id}/runs`;

  const load = async () => {
    const url = `/management/scenarios/${enc(scenario.id)}/runs?top=${PAGE_SIZE}${skiptoken ? `&skiptoken=${enc(skiptoken)}` : ""}`;
    const page = await get(url, { signal });
    body.replaceChildren(
      ...(page.value.length
        ? page.value.map((run) =>
            h(
              "tr",
              {},
              h("th", { scope: "row", "data-label": "Run", class: "mono" }, h("a", { href: `${base}/${run.id}` }, run.id)),
              h("td", { "data-label": "Status" }, statusBadge(run.status)),
              h("td", { "data-label": "Created" }, fmtTime(run.createdAt)),
              h("td", { "data-label": "Duration" }, fmtDuration(run.startedAt, run.endedAt)),
              h("td", { "data-label": "Trigger" }, triggerSummary(run.trigger)),
              h("td", { "data-label": "Attempts" }, String(run.attempts || 0)),
              h("td", { "data-label": "Error" }, run.error ? h("span", { class: "run-error" }, run.error.slice(0, 200)) : "—"),
            ),
          )
        : [h("tr", {}, h("td", { colspan: "7" }, skiptoken ? "No more runs." : "No runs yet. ", skiptoken ? null : h("a", { href: `/console/scenarios/${scenario.id}/try` }, "Send a test request")))]),
    );
    const links = [];
    if (skiptoken) links.push(h("a", { href: base, class: "button" }, "Newest runs"));
    if (page.nextLink) {
      const next = new URL(page.nextLink).searchParams.get("skiptoken");
      links.push(h("a", { href: `${base}?skiptoken=${enc(next)}`, class: "button" }, "Older runs"));
    }
    pager.replaceChildren(...links);
    return page.value.some((run) => ACTIVE.has(run.status));
  };

  const refresh = h("button", { type: "button" }, "Refresh");
  refresh.addEventListener("click", () => load().catch((e) => show(errors, errorBox(e))));
  show(
    main,
    scenarioHeader(scenario, "runs", "Runs"),
    h("div", { class: "actions" }, refresh, h("a", { href: `/console/scenarios/${scenario.id}/try`, class: "button" }, "Send a test request")),
    state,
    h(
      "div",
      { class: "table-wrap", role: "region", "aria-label": "Runs, newest first", tabindex: "0" },
      h(
        "table",
        { class: "cards" },
        h("caption", { class: "visually-hidden" }, "Runs, newest first"),
        h("thead", {}, h("tr", {}, ["Run", "Status", "Created", "Duration", "Trigger", "Attempts", "Error"].map((t) => h("th", { scope: "col" }, t)))),
        body,
      ),
    ),
    pager,
    errors,
  );
  // Refresh while a run on this page is still queued or running (in the background: the page is shown).
  let active = await load();
  (async () => {
    while (active && !signal.aborted) {
      state.textContent = "Some runs are still going; this page refreshes every 2 seconds.";
      await sleep(2000, signal);
      if (signal.aborted) return;
      try {
        active = await load();
      } catch (error) {
        if (signal.aborted) return;
        show(errors, errorBox(error));
        return;
      }
    }
    state.textContent = "";
  })();
}

/** Everything about one run: facts, the steps on a timeline, output, intermediate value, error. */
export function runDetails(run) {
  const facts = [
    ["Status", statusBadge(run.status)],
    ["Run id", h("span", { class: "mono" }, run.id)],
    ["Created", fmtTime(run.createdAt)],
    ["Started", fmtTime(run.startedAt)],
    ["Ended", fmtTime(run.endedAt)],
    ["Duration", fmtDuration(run.startedAt, run.endedAt)],
    ["Attempts", String(run.attempts || 0)],
    ["Trigger", triggerSummary(run.trigger)],
  ];
  if (run.failedStep) facts.push(["Failed step", h("span", { class: "mono" }, run.failedStep)]);
  return h(
    "div",
    { class: "run-details" },
    h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    run.error ? h("section", {}, h("h3", {}, "Error"), h("div", { class: "error run-error", role: "note" }, h("p", { class: "message" }, run.error))) : null,
    h("section", {}, h("h3", {}, "Steps"), timeline(run)),
    h("section", {}, h("h3", {}, "Output"), run.output === null || run.output === undefined ? h("p", { class: "muted" }, "None.") : jsonBlock(run.output, "Run output")),
    run.intermediate === null || run.intermediate === undefined ? null : h("section", {}, h("h3", {}, "Intermediate value"), jsonBlock(run.intermediate, "Intermediate value")),
    h("details", {}, h("summary", {}, "Trigger (as recorded)"), jsonBlock(run.trigger, "Trigger")),
  );
}

/** "1.then.0" (as the run records it) -> "steps[1].then[0]" (as the editor and errors name it). */
export function stepLabel(path) {
  return `steps${String(path).split(".").map((part) => (/^\d+$/.test(part) ? `[${part}]` : `.${part}`)).join("")}`;
}

function timeline(run) {
  const steps = Array.isArray(run.steps) ? run.steps : [];
  if (!steps.length) {
    // A run's steps are stored when it ends (or answers early), not one by one.
    const why = { queued: "Not started yet.", running: "Running: its steps are shown when it ends." }[run.status] || "No steps recorded.";
    return h("p", { class: "muted steps-pending" }, why);
  }
  const times = steps.flatMap((s) => [s.startedAt, s.endedAt]).filter(Boolean).map((t) => new Date(t).getTime());
  const first = Math.min(...times);
  const span = Math.max(1, Math.max(...times) - first);
  return h(
    "ol",
    { class: "timeline" },
    steps.map((step) => {
      const start = new Date(step.startedAt).getTime();
      const end = step.endedAt ? new Date(step.endedAt).getTime() : start;
      const bar = h("span");
      // Width and offset as classes would need one class per percentage: use the CSSOM (allowed by the CSP).
      bar.style.left = `${((start - first) / span) * 100}%`;
      bar.style.width = `${Math.max(1, ((end - start) / span) * 100)}%`;
      const status = step.status || "running";
      return h(
        "li",
        {},
        h("span", { class: `dot status-${status}`, "aria-hidden": "true" }),
        h(
          "div",
          {},
          h(
            "div",
            { class: "step-line" },
            h("span", { class: "step-name" }, step.id || step.type),
            h("span", { class: "muted mono" }, step.id ? `${step.type} · ${stepLabel(step.path)}` : stepLabel(step.path)),
            statusBadge(status),
            h("span", {}, `started ${fmtTime(step.startedAt)}`),
            h("span", {}, `took ${fmtDuration(step.startedAt, step.endedAt)}`),
            step.branch ? h("span", { class: "muted" }, `took the ${step.branch} branch`) : null,
          ),
          h("div", { class: "bar", "aria-hidden": "true" }, bar),
          step.error ? h("p", { class: "step-error" }, step.error) : null,
        ),
      );
    }),
  );
}

export async function runPage({ main, params, signal, setTitle }) {
  const scenario = await loadScenario(params[0], signal);
  const runId = params[1];
  setTitle(`Run ${runId.slice(0, 8)} of ${scenario.name}`);
  const details = h("div");
  const state = h("p", { class: "count", "aria-live": "polite" });
  show(
    main,
    scenarioHeader(scenario, "runs", "Run"),
    h("p", {}, h("a", { href: `/console/scenarios/${scenario.id}/runs` }, "All runs of this scenario")),
    state,
    h("section", { class: "card" }, details),
  );
  const refresh = async () => {
    const run = await get(`/management/scenarios/${enc(scenario.id)}/runs/${enc(runId)}`, { signal });
    show(details, runDetails(run));
    state.textContent = ACTIVE.has(run.status) ? `The run is ${run.status}; this page refreshes every second.` : "";
    return ACTIVE.has(run.status);
  };
  let active = await refresh();
  (async () => {
    while (active && !signal.aborted) {
      await sleep(1000, signal);
      if (signal.aborted) return;
      try {
        active = await refresh();
      } catch (error) {
        if (!signal.aborted) show(state, errorBox(error));
        return;
      }
    }
  })();
}

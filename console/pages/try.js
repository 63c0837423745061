// Try it: send a test request to the scenario's Accept URL, as a caller would, and follow the
// run it starts until it ends.

import { ApiError, call, enc, get } from "../api.js";
import { errorBox, field, h, notice, progress, show, statusBadge } from "../ui.js";
import { loadScenario, scenarioHeader } from "./common.js";
import { runDetails } from "./runs.js";

const EXAMPLES = {
  json: { type: "application/json", text: '{\n  "orderId": 42,\n  "customer": "Contoso"\n}' },
  xml: { type: "application/xml", text: "<order>\n  <orderId>42</orderId>\n  <customer>Contoso</customer>\n</order>" },
  form: { type: "application/x-www-form-urlencoded", text: "orderId=42&customer=Contoso" },
  none: { type: null, text: "" },
};
const FINAL = new Set(["succeeded", "failed"]);

export default async function tryPage({ main, params, signal, setTitle }) {
  const scenario = await loadScenario(params[0], signal);
  setTitle(`Try ${scenario.name}`);
  const kind = h(
    "select",
    { name: "bodyType" },
    h("option", { value: "json" }, "JSON (application/json)"),
    h("option", { value: "xml" }, "XML (application/xml)"),
    h("option", { value: "form" }, "Form (application/x-www-form-urlencoded)"),
    h("option", { value: "none" }, "No body (GET)"),
  );
  const body = h("textarea", { name: "body", rows: 8, class: "mono", spellcheck: "false" }, EXAMPLES.json.text);
  const idempotency = h("input", { type: "text", name: "idempotencyKey", autocomplete: "off", maxlength: "255" });
  const anonymous = h("input", { type: "checkbox", name: "anonymous" });
  const send = h("button", { type: "submit", class: "primary" }, "Send test request");
  const result = h("div", { class: "try-result", "aria-live": "polite" }, h("p", { class: "muted" }, "Nothing sent yet."));
  const bodyField = field("Body", body, "It becomes the process's data[0].Body (XML and forms as objects). Type a form as name=value&name=value; it is encoded as a browser submits a form.");

  kind.addEventListener("change", () => {
    body.value = EXAMPLES[kind.value].text;
    bodyField.hidden = kind.value === "none";
  });

  const form = h(
    "form",
    { class: "card" },
    h("h2", {}, "Test request"),
    field("Body type", kind),
    bodyField,
    field("Idempotency-Key (optional)", idempotency, "The same key again within 24 hours returns the first run instead of starting another."),
    scenario.externalTriggers?.allowAnonymous ? field("Send without credentials (as an anonymous caller)", anonymous) : null,
    h("div", { class: "actions" }, send),
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    send.disabled = true;
    const line = progress("Sending the request…", signal);
    show(result, line.el);
    try {
      const options = { signal, anonymous: anonymous.checked, headers: {} };
      if (idempotency.value.trim()) options.headers["Idempotency-Key"] = idempotency.value.trim();
      let method = "GET";
      if (kind.value !== "none") {
        method = "POST";
        options.body = kind.value === "form" ? formBody(body.value) : body.value;
        options.contentType = EXAMPLES[kind.value].type;
      }
      const answer = await call(method, `/ExternalData/Accept/${enc(scenario.id)}`, options);
      const runId = answer.headers.get("x-run-id");
      const replayed = answer.headers.get("idempotent-replayed") === "true";
      const runLink = h("a", { href: `/console/scenarios/${scenario.id}/runs/${runId}` }, runId);
      const head = h("p", {}, `Accepted (HTTP ${answer.status}). Run `, runLink, replayed ? " (replayed: this key started it earlier)" : "", ".");
      const state = h("p", { class: "run-state" });
      const details = h("div");
      show(result, head, line.el, state, details);
      await follow(scenario.id, runId, line, state, details, signal);
    } catch (error) {
      line.stop();
      if (signal.aborted) return;
      const hint =
        error instanceof ApiError && error.status === 403 && !scenario.externalTriggers?.enabled
          ? h("p", {}, "External triggers are off for this scenario. ", h("a", { href: `/console/scenarios/${scenario.id}` }, "Enable them on its page"), " and save.")
          : null;
      show(result, errorBox(error, hint));
    } finally {
      send.disabled = false;
    }
  });

  show(
    main,
    scenarioHeader(scenario, "try", "Try it"),
    scenario.externalTriggers?.enabled
      ? null
      : notice(h("span", {}, "External triggers are off for this scenario, so Accept refuses calls (403). ", h("a", { href: `/console/scenarios/${scenario.id}` }, "Enable them"), " first."), "warn"),
    h("p", { class: "lead" }, "Sends ", h("code", {}, `POST /ExternalData/Accept/${scenario.id}`), " with your credentials, then follows the run it starts."),
    h("div", { class: "split" }, form, h("section", { class: "card", "aria-labelledby": "result-heading" }, h("h2", { id: "result-heading" }, "Result"), result)),
  );
}

/**
 * A form as typed (name=value&…, with spaces or accented letters as they are) encoded as a
 * browser submits one: Junction reads a form as ASCII with UTF-8 escapes, so "Zoë Café" sent
 * as typed would be refused. Escapes already typed (%25, +) keep their meaning.
 */
function formBody(text) {
  return new URLSearchParams(text.replace(/^[\r\n]+|[\r\n]+$/g, "")).toString();
}

/** Poll the run until it ends, showing its status and the time waited. */
async function follow(scenarioId, runId, line, state, details, signal) {
  let delay = 250;
  for (;;) {
    const run = await get(`/management/scenarios/${enc(scenarioId)}/runs/${enc(runId)}`, { signal });
    show(state, "Status: ", statusBadge(run.status), run.attempts > 1 ? ` (attempt ${run.attempts})` : "");
    line.setLabel(run.status === "queued" ? "Waiting for a worker to pick the run up…" : "The run is running…");
    if (FINAL.has(run.status)) {
      line.stop();
      line.el.remove();
      state.remove(); // the details below say the status
      show(details, runDetails(run));
      return run;
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    if (signal.aborted) return null;
    delay = Math.min(1000, delay * 1.5);
  }
}

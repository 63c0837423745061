// Cache: look a key up (as JSON) the way callers do, with GetCacheData, see the value, and
// delete the entry through the management API.

import { ApiError, call, enc } from "../api.js";
import { busy, confirmButton, errorBox, field, h, jsonBlock, notice, show } from "../ui.js";
import { loadScenario, scenarioHeader } from "./common.js";

export default async function cachePage({ main, params, query, signal, setTitle }) {
  const scenario = await loadScenario(params[0], signal);
  setTitle(`Cache of ${scenario.name}`);
  const key = h("input", { type: "text", name: "key", class: "mono", autocomplete: "off", spellcheck: "false", value: query.get("key") || '"last"' });
  const look = h("button", { type: "submit", class: "primary" }, "Look up");
  const result = h("div", { "aria-live": "polite" });

  const lookUp = async () => {
    const text = key.value.trim();
    try {
      JSON.parse(text);
    } catch (error) {
      key.setAttribute("aria-invalid", "true");
      show(result, errorBox({ code: "InvalidJson", message: `The key must be JSON ("last", 42, {"id": 1} …): ${error.message}` }));
      return;
    }
    key.removeAttribute("aria-invalid");
    history.replaceState(null, "", `/console/scenarios/${scenario.id}/cache?key=${enc(text)}`);
    try {
      const answer = await call("GET", `/ExternalData/GetCacheData/${enc(scenario.id)}?keyJson=${enc(text)}`, { signal });
      const remove = confirmButton("Delete", "Delete this cache entry?", async () => {
        try {
          await call("DELETE", `/management/scenarios/${enc(scenario.id)}/cache?keyJson=${enc(text)}`, { signal });
          show(result, notice(`Deleted the entry under ${text}.`, "ok"));
        } catch (error) {
          show(result, errorBox(error));
        }
      });
      show(result, h("h3", {}, "Value under ", h("code", {}, text)), jsonBlock(answer.body, "Cached value"), h("div", { class: "actions" }, remove));
    } catch (error) {
      if (signal.aborted) return;
      const hint =
        error instanceof ApiError && error.status === 403 && !scenario.externalTriggers?.enabled
          ? h("p", {}, "Values are read with GetCacheData, which needs the scenario's external triggers enabled.")
          : null;
      show(result, errorBox(error, hint));
    }
  };

  const form = h("form", { class: "card" }, h("h2", {}, "Look up a key"), field("Key (JSON)", key, 'As the process wrote it: "last" is the string last; 42 and {"id": 1} are keys too.'), h("div", { class: "actions" }, look));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(look, lookUp, result);
  });
  show(
    main,
    scenarioHeader(scenario, "cache", "Cache"),
    h("p", { class: "lead" }, "Reads with ", h("code", {}, `GET /ExternalData/GetCacheData/${scenario.id}?keyJson=…`), ", as callers do; deletes through the management API."),
    form,
    h("section", { class: "card", "aria-labelledby": "value-heading" }, h("h2", { id: "value-heading" }, "Entry"), result),
  );
  if (query.get("key")) await lookUp();
}

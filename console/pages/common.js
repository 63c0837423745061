// Pieces the scenario pages share: the scenario's header with its tabs.

import { enc, get } from "../api.js";
import { h } from "../ui.js";

export async function loadScenario(id, signal) {
  return get(`/management/scenarios/${enc(id)}`, { signal });
}

/** The scenario's name and the tabs of its pages (Edit, Try it, Runs, Cache). */
export function scenarioHeader(scenario, active, title) {
  const base = `/console/scenarios/${scenario.id}`;
  const tabs = [
    ["edit", base, "Edit"],
    ["try", `${base}/try`, "Try it"],
    ["runs", `${base}/runs`, "Runs"],
    ["cache", `${base}/cache`, "Cache"],
  ];
  return h(
    "div",
    { class: "page-head scenario-head" },
    h("p", { class: "crumbs" }, h("a", { href: "/console/scenarios" }, "Scenarios"), " / ", h("span", {}, scenario.name)),
    h("h1", { tabindex: "-1" }, title),
    h(
      "nav",
      { class: "tabs", "aria-label": "Scenario pages" },
      tabs.map(([key, href, text]) => h("a", { href, "aria-current": key === active ? "page" : null }, text)),
    ),
  );
}

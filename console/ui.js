// Small DOM helpers. Everything the console shows is built with these: text always goes in as
// text (never as HTML), and no element gets an inline style (the page's CSP allows none).

let uid = 0;

/** An element: h("button", {class: "primary", onclick: fn}, "Save"). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    } else if (name === "text") {
      el.textContent = value;
    } else if (name === "value" && "value" in el) {
      el.value = value;
    } else if (name === "checked" || name === "selected" || name === "disabled" || name === "multiple") {
      el[name] = Boolean(value);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

export function newId(prefix = "f") {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** A labelled form control: the label names it, the hint describes it (aria-describedby). */
export function field(label, control, hint) {
  const id = control.id || newId();
  control.id = id;
  let hintEl = null;
  if (hint) {
    hintEl = h("p", { class: "hint", id: `${id}-hint` }, hint);
    control.setAttribute("aria-describedby", `${id}-hint`);
  }
  const isCheck = control.type === "checkbox" || control.type === "radio";
  if (isCheck) {
    return h("div", { class: "field check" }, control, h("label", { for: id }, label), hintEl);
  }
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hintEl);
}

/** An API error (or any error) shown with its code and message, never a stack trace. */
export function errorBox(error, extra) {
  const code = error && error.code ? error.code : "Error";
  const status = error && error.status ? ` (HTTP ${error.status})` : "";
  const message = error && error.message ? error.message : String(error);
  return h(
    "div",
    { class: "error", role: "alert" },
    h("p", {}, h("strong", { class: "code" }, code), status, ": ", h("span", { class: "message" }, message)),
    error && error.status === 401
      ? h("p", {}, "Your sign-in is not accepted. ", h("a", { href: `/console/signin?next=${encodeURIComponent(location.pathname + location.search)}` }, "Sign in again"))
      : null,
    extra || null,
  );
}

export function notice(text, kind = "info") {
  return h("div", { class: `notice ${kind}`, role: "status" }, text);
}

/** A region whose content is replaced as things happen (announced to screen readers). */
export function statusArea() {
  return h("div", { class: "status-area", "aria-live": "polite" });
}

export function show(container, ...content) {
  container.replaceChildren();
  append(container, content);
}

/** An indeterminate progress line with the seconds waited so far. Call stop() when done. */
export function progress(label, signal) {
  const started = performance.now();
  const seconds = h("span", { class: "elapsed" }, "0 s");
  const text = h("span", {}, label);
  const bar = h("progress", { "aria-label": label });
  const el = h("div", { class: "progress", role: "status" }, bar, text, " ", seconds);
  const timer = setInterval(() => {
    seconds.textContent = `${Math.round((performance.now() - started) / 1000)} s`;
  }, 500);
  const stop = () => clearInterval(timer);
  if (signal) signal.addEventListener("abort", stop);
  const setLabel = (value) => {
    text.textContent = value;
    bar.setAttribute("aria-label", value); // what a screen reader names the bar says the same
  };
  return { el, stop, setLabel };
}

/** Disable a button while its work runs, with a progress line after a short wait. */
export async function busy(button, work, where) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  let line = null;
  const timer = setTimeout(() => {
    if (where) {
      line = progress("Working…");
      where.append(line.el);
    }
  }, 400);
  try {
    return await work();
  } finally {
    clearTimeout(timer);
    if (line) {
      line.stop();
      line.el.remove();
    }
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

async function writeClipboard(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Clipboard permission refused (an embedded browser, say): copy from a selected field.
    const area = h("textarea", { class: "offscreen", "aria-hidden": "true", readonly: true }, text);
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

/** A read-only value with a Copy button that says when it copied. */
export function copyField(label, value, { secret = false, multiline = false } = {}) {
  const id = newId("copy");
  const box = multiline
    ? h("textarea", { id, class: "mono copy-value", readonly: true, rows: 3, spellcheck: "false" }, value)
    : h("input", { id, class: "mono copy-value", readonly: true, value, type: "text", spellcheck: "false" });
  const said = h("span", { class: "copied", "aria-live": "polite" });
  const button = h(
    "button",
    {
      type: "button",
      class: "copy",
      "aria-label": `Copy ${label}`,
      onclick: async () => {
        said.textContent = (await writeClipboard(value)) ? "Copied" : "Select the text and copy it";
        setTimeout(() => (said.textContent = ""), 4000);
      },
    },
    "Copy",
  );
  return h("div", { class: ["field copy-field", secret && "secret"] }, h("label", { for: id }, label), h("div", { class: "copy-row" }, box, button, said));
}

/** A button that asks again before doing something that cannot be undone. */
export function confirmButton(label, question, action) {
  const wrap = h("span", { class: "confirm" });
  const first = h("button", { type: "button", class: "danger" }, label);
  const ask = () => {
    const yes = h("button", { type: "button", class: "danger" }, `Yes, ${label.toLowerCase()}`);
    const no = h("button", { type: "button" }, "Cancel");
    const q = h("span", { class: "question" }, question);
    yes.addEventListener("click", async () => {
      await busy(yes, action);
    });
    no.addEventListener("click", () => {
      show(wrap, first);
      first.focus();
    });
    show(wrap, q, " ", yes, " ", no);
    no.focus();
  };
  first.addEventListener("click", ask);
  wrap.append(first);
  return wrap;
}

export function statusBadge(status) {
  const value = status || "unknown";
  return h("span", { class: `badge status-${value}` }, value);
}

export function yesNo(value) {
  return h("span", { class: value ? "yes" : "no" }, value ? "yes" : "no");
}

export function jsonBlock(value, label) {
  const text = value === undefined ? "" : JSON.stringify(value, null, 2);
  return h("pre", { class: "json", tabindex: "0", "aria-label": label || "JSON value" }, text);
}

export function fmtTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export function fmtDuration(startIso, endIso) {
  if (!startIso || !endIso) return "—";
  const ms = new Date(endIso).getTime() - new Date(startIso).getTime();
  if (!Number.isFinite(ms)) return "—";
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

/** A table that scrolls sideways on a narrow screen instead of breaking the page. */
export function table(caption, headings, rows) {
  return h(
    "div",
    { class: "table-wrap", role: "region", "aria-label": caption, tabindex: "0" },
    h(
      "table",
      {},
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, headings.map((text) => h("th", { scope: "col" }, text)))),
      h("tbody", {}, rows),
    ),
  );
}

export function pageHeader(title, ...actions) {
  return h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, title), actions.length ? h("div", { class: "actions" }, actions) : null);
}

export function link(href, text, attrs = {}) {
  return h("a", { href, ...attrs }, text);
}

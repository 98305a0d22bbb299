// Small DOM helpers: elements are built with `h`, text is always set as text
// (never parsed as HTML) unless it went through markdown.js.

/**
 * `h("div#id.card", {attrs, on: {click}}, ...children)`: an element; strings
 * become text nodes, null/false children are skipped.
 */
export function h(spec, props = {}, ...children) {
  const tag = spec.match(/^[a-z0-9]*/i)[0] || "div";
  const el = document.createElement(tag);
  for (const [, kind, name] of spec.slice(tag.length).matchAll(/([.#])([^.#]+)/g)) {
    if (kind === "#") el.id = name;
    else el.classList.add(name);
  }
  if (props && (typeof props !== "object" || props instanceof Node || Array.isArray(props))) {
    children.unshift(props);
    props = {};
  }
  for (const [k, v] of Object.entries(props ?? {})) {
    if (k === "on") for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "class") el.className += ` ${v}`;
    else if (v === true) el.setAttribute(k, "");
    else if (v !== false && v != null) el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** "3 min ago", or the date for older times. */
export function ago(iso) {
  if (!iso) return "";
  const t = Date.parse(iso);
  const s = Math.round((Date.now() - t) / 1000);
  if (s < 60) return `${Math.max(s, 0)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(t).toISOString().slice(0, 16).replace("T", " ");
}

/** 1234567 → "1.2 MB". */
export function bytes(n) {
  if (n == null) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** A status pill. */
export function pill(text, kind = text) {
  return h(`span.pill.pill-${String(kind).replace(/[^a-z_-]/gi, "")}`, text);
}

/** A banner for an error, with what the kernel said. */
export function errorBox(e) {
  return h("div.error", { role: "alert" }, e.code ? `${e.code}: ${e.message}` : String(e.message ?? e));
}

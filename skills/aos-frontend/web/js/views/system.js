// System health (`system.health`) and the AOSCB (`system.get`), editable as
// JSON through `system.update` with the revision it was read at.

import { call } from "../api.js";
import { errorBox, h, mount, pill } from "../dom.js";

const EDITABLE = ["model", "defaultSkills", "autoFoldThreshold", "compactionThreshold", "maxTurns"];

export function systemView(root) {
  const health = h("div#system-health");
  const cb = h("div#aoscb");
  mount(root, h("div.col-main.wide", h("h2", "Health"), health, h("h2", "AOSCB"), cb));

  async function load() {
    try {
      const [hl, aoscb] = await Promise.all([call("system.health"), call("system.get")]);
      mount(health, healthTable(hl));
      mount(cb, editor(aoscb, load));
    } catch (e) {
      mount(health, errorBox(e));
    }
  }
  load();
  return () => {};
}

function healthTable(hl) {
  const rows = [
    ["status", pill(hl.status, hl.status === "ok" ? "ok" : "error")],
    ["version", hl.version],
    ["node", hl.nodeId],
    ["uptime", `${hl.uptimeS} s`],
    ["store", `${hl.backend} · ${hl.store}`],
    ["skills", `${hl.skills?.valid} valid · ${hl.skills?.invalid} invalid`],
    ["bash sandbox", h("code.small", JSON.stringify(hl.bashSandbox))],
  ];
  return h("table.kv", h("tbody", rows.map(([k, v]) => h("tr", h("th", k), h("td", v)))));
}

function editor(aoscb, reload) {
  const shown = Object.fromEntries(EDITABLE.filter((k) => k in aoscb).map((k) => [k, aoscb[k]]));
  const text = h("textarea#aoscb-edit.code", { rows: 18, spellcheck: "false" });
  text.value = JSON.stringify(shown, null, 2);
  const status = h("div.small");
  async function save(ev) {
    ev.preventDefault();
    let changes;
    try {
      changes = JSON.parse(text.value);
    } catch (e) {
      return mount(status, errorBox({ code: "request.invalid", message: `not JSON: ${e.message}` }));
    }
    try {
      await call("system.update", { expectedRevision: aoscb.revision, ...changes });
      mount(status, "saved");
      reload();
    } catch (e) {
      mount(status, errorBox(e));
    }
  }
  return h(
    "form.card",
    { on: { submit: save } },
    h("div.muted.small", `revision ${aoscb.revision} · updated ${aoscb.updatedAt ?? ""} · skill root ${aoscb.skillRoot}`),
    text,
    h("button", { type: "submit" }, "Save"),
    status,
  );
}

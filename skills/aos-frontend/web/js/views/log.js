// The RuntimeLog, newest first, filtered by agent, session, op and level
// (`runtime.log.list` with `order: desc`), paged by the kernel's cursor.

import { call } from "../api.js";
import { errorBox, h, mount, pill } from "../dom.js";

export function logView(root, params) {
  const fields = {
    agentId: h("input#log-agent", { placeholder: "agent id", value: params.get("agent") ?? "" }),
    sessionId: h("input#log-session", { placeholder: "session id", value: params.get("session-id") ?? "" }),
    operation: h("input#log-op", { placeholder: "op, e.g. tool.bash", value: params.get("op") ?? "" }),
    level: h("select#log-level", h("option", { value: "" }, "any level"), ["info", "warn", "error"].map((l) => h("option", { value: l }, l))),
  };
  fields.level.value = params.get("level") ?? "";
  const rows = h("tbody#log-rows");
  const pager = h("div.pager");
  const cursors = [null];
  let page = 0;
  const form = h(
    "form.toolbar.filters",
    { on: { submit: (e) => (e.preventDefault(), (page = 0), (cursors.length = 1), load()) } },
    h("h2", "RuntimeLog"),
    Object.values(fields),
    h("button", { type: "submit" }, "Filter"),
  );
  mount(
    root,
    h(
      "div.col-main.wide",
      form,
      h("table.list#log", h("thead", h("tr", h("th", "Time"), h("th", "Level"), h("th", "Op"), h("th", "Owner"), h("th", "Session"), h("th", "Data"))), rows),
      pager,
    ),
  );

  async function load() {
    const q = { order: "desc", limit: 100 };
    for (const [k, el] of Object.entries(fields)) if (el.value.trim()) q[k] = el.value.trim();
    if (cursors[page]) q.cursor = cursors[page];
    try {
      const data = await call("runtime.log.list", q);
      cursors[page + 1] = data.nextCursor;
      mount(rows, data.entries.length ? data.entries.map(row) : h("tr", h("td.muted", { colspan: 6 }, "No entries match.")));
      mount(
        pager,
        h("button.quiet", { disabled: page === 0, on: { click: () => ((page -= 1), load()) } }, "← Newer"),
        h("span.muted", `page ${page + 1}`),
        h("button.quiet", { disabled: !data.nextCursor, on: { click: () => ((page += 1), load()) } }, "Older →"),
      );
    } catch (e) {
      mount(rows, h("tr", h("td", { colspan: 6 }, errorBox(e))));
    }
  }
  load();
  return () => {};
}

function row(e) {
  const data = e.data == null ? "" : JSON.stringify(e.data);
  return h(
    "tr",
    { dataset: { level: e.level } },
    h("td.small.mono", e.time?.replace("T", " ").slice(0, 23)),
    h("td", pill(e.level)),
    h("td.mono.small", e.op),
    h("td.small", e.ownerType, e.ownerId ? ` ${e.ownerId}` : ""),
    h("td.small.mono", e.sessionId ? h("a", { href: `#session=${e.sessionId}` }, e.sessionId) : e.agentId ?? ""),
    h("td", data.length > 160 ? h("details", h("summary.small.mono", `${data.slice(0, 160)}…`), h("pre.out", JSON.stringify(e.data, null, 2))) : h("code.small", data)),
  );
}

// Agents and sessions: newest sessions first, searched by title, session id
// or agent id (the kernel filters: `session.list` with `search`), paged with
// the kernel's cursor — one page of 50 per request, however many exist.

import { call } from "../api.js";
import { ago, errorBox, h, mount, pill } from "../dom.js";

const PAGE = 50;

export function sessionsView(root, params) {
  const state = { search: params.get("q") ?? "", agentId: params.get("agent") ?? "", cursors: [null], page: 0 };
  const agentsBox = h("section.agents");
  const list = h("tbody#session-rows");
  const pager = h("div.pager");
  const search = h("input#session-search", {
    type: "search",
    placeholder: "Search title, session id or agent id",
    value: state.search,
    "aria-label": "Search sessions",
  });
  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      state.search = search.value.trim();
      state.cursors = [null];
      state.page = 0;
      load();
    }, 200);
  });

  mount(
    root,
    h(
      "div.split",
      h("div.col-side", h("h2", "Agents"), agentsBox, newSession(root)),
      h(
        "div.col-main",
        h("div.toolbar", h("h2", "Sessions"), search),
        h(
          "table.list#sessions",
          h("thead", h("tr", h("th", "Session"), h("th", "Agent"), h("th", "Status"), h("th", "Messages"), h("th", "Updated"))),
          list,
        ),
        pager,
      ),
    ),
  );

  async function load() {
    const params = { order: "desc", limit: PAGE };
    if (state.search) params.search = state.search;
    if (state.agentId) params.agentId = state.agentId;
    const cursor = state.cursors[state.page];
    if (cursor) params.cursor = cursor;
    try {
      const data = await call("session.list", params);
      state.cursors[state.page + 1] = data.nextCursor;
      mount(list, data.sessions.length ? data.sessions.map(row) : h("tr", h("td.muted", { colspan: 5 }, "No sessions match.")));
      mount(
        pager,
        h("button.quiet", { disabled: state.page === 0, on: { click: () => turn(-1) } }, "← Newer"),
        h("span.muted", `page ${state.page + 1}`),
        h("button.quiet#next-page", { disabled: !data.nextCursor, on: { click: () => turn(1) } }, "Older →"),
      );
    } catch (e) {
      mount(list, h("tr", h("td", { colspan: 5 }, errorBox(e))));
    }
  }

  function turn(by) {
    state.page = Math.max(0, state.page + by);
    load();
  }

  async function loadAgents() {
    try {
      const data = await call("agent.list", { limit: 200 });
      mount(
        agentsBox,
        h(
          "ul.agent-list",
          h("li", h("a", { href: "#view=sessions", class: state.agentId ? "" : "active" }, "All agents")),
          data.agents.map((a) =>
            h(
              "li",
              h(
                "a",
                { href: `#view=sessions&agent=${a.agentId}`, class: state.agentId === a.agentId ? "active" : "" },
                a.displayName || a.agentId,
              ),
              h("div.muted.small", `${a.model ?? "default model"} · ${a.status}`),
            ),
          ),
        ),
      );
    } catch (e) {
      mount(agentsBox, errorBox(e));
    }
  }

  load();
  loadAgents();
  return () => clearTimeout(timer);
}

function row(s) {
  const title = s.title || "(untitled)";
  return h(
    "tr",
    { dataset: { session: s.sessionId } },
    h("td", h("a.session-link", { href: `#session=${s.sessionId}` }, title), h("div.muted.small.mono", s.sessionId)),
    h("td.mono.small", h("a", { href: `#view=sessions&agent=${s.agentId}` }, s.agentId)),
    h("td", pill(s.status), " ", s.phase !== "idle" ? pill(s.phase) : null),
    h("td.num", String(s.messageCount ?? 0)),
    h("td.muted", ago(s.updatedAt)),
  );
}

/** Create a session (for an existing agent, or a new one) and open it. */
function newSession() {
  const title = h("input#new-title", { placeholder: "Title (optional)", "aria-label": "New session title" });
  const model = h("input#new-model", { placeholder: "Model (blank: default)", "aria-label": "Model" });
  const status = h("div.small");
  const form = h(
    "form.card.new-session",
    { on: { submit: create } },
    h("h3", "New agent and session"),
    title,
    model,
    h("button", { type: "submit" }, "Create"),
    status,
  );
  async function create(ev) {
    ev.preventDefault();
    try {
      const agent = await call("agent.create", model.value.trim() ? { model: model.value.trim() } : {});
      const params = { agentId: agent.agentId };
      if (title.value.trim()) params.title = title.value.trim();
      const s = await call("session.create", params);
      location.hash = `session=${s.sessionId}`;
    } catch (e) {
      mount(status, errorBox(e));
    }
  }
  return form;
}

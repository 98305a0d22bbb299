// Skills and services: the index (invalid skills with their errors), each
// skill's capabilities, the running instances with state, calls and
// failures; start (system-owned), stop, restart.

import { call } from "../api.js";
import { ago, errorBox, h, mount, pill } from "../dom.js";

export function skillsView(root) {
  const status = h("div.small#skills-status");
  const index = h("div#skill-index");
  const services = h("tbody#service-rows");
  mount(
    root,
    h(
      "div.col-main.wide",
      h("div.toolbar", h("h2", "Services"), h("button.quiet", { on: { click: load } }, "Reload")),
      status,
      h(
        "table.list#services",
        h(
          "thead",
          h("tr", h("th", "Skill"), h("th", "Instance"), h("th", "Owner"), h("th", "State"), h("th", "Calls"), h("th", "Failures"), h("th", "")),
        ),
        services,
      ),
      h("div.toolbar", h("h2", "Skill index"), h("button.quiet", { on: { click: reindex } }, "Re-index")),
      index,
    ),
  );

  async function act(what, fn) {
    mount(status, `${what}…`);
    try {
      await fn();
      mount(status, `${what}: done`);
    } catch (e) {
      mount(status, errorBox(e));
    }
    load();
  }

  async function load() {
    try {
      const [skills, running] = await Promise.all([call("skill.list"), call("service.list")]);
      mount(services, running.services.length ? running.services.map(serviceRow) : h("tr", h("td.muted", { colspan: 7 }, "No services.")));
      mount(index, skills.skills.map((s) => skillCard(s, running.services)));
    } catch (e) {
      mount(index, errorBox(e));
    }
  }

  function serviceRow(v) {
    const live = v.state === "running";
    return h(
      "tr",
      { dataset: { instance: v.instanceId, skill: v.skillName } },
      h("td", v.skillName),
      h("td.mono.small", v.instanceId, h("div.muted", v.runtime ?? v.kind ?? "")),
      h("td.small", v.ownerType, v.ownerId ? ` ${v.ownerId}` : ""),
      h("td", pill(v.state), v.error ? h("div.error.small", v.error) : null, h("div.muted.small", v.startedAt ? `since ${ago(v.startedAt)}` : "")),
      h("td.num", String(v.calls ?? 0)),
      h("td.num", String(v.consecutiveFailures ?? 0)),
      h(
        "td.actions",
        live ? h("button.quiet.stop", { on: { click: () => act(`stop ${v.instanceId}`, () => call("skill.stop", { instanceId: v.instanceId })) } }, "Stop") : null,
        h(
          "button.quiet.restart",
          {
            on: {
              click: () =>
                act(`restart ${v.skillName}`, async () => {
                  if (live) await call("skill.stop", { instanceId: v.instanceId });
                  await call("skill.start", { name: v.skillName, owner: owner(v) });
                }),
            },
          },
          live ? "Restart" : "Start again",
        ),
      ),
    );
  }

  function skillCard(s, running) {
    const instances = running.filter((v) => v.skillName === s.name && v.state === "running");
    if (!s.valid) {
      return h("div.card.skill.invalid", { dataset: { skill: s.name } }, h("h3", s.name, " ", pill("invalid", "error")), h("div.error", s.error), h("div.muted.small.mono", s.dir));
    }
    const caps = s.capabilities;
    return h(
      "div.card.skill",
      { dataset: { skill: s.name } },
      h(
        "div.skill-head",
        h("h3", s.name),
        s.service ? pill(`service: ${s.service.kind ?? "yes"}`, "service") : pill("text only", "text"),
        instances.length ? pill(`${instances.length} running`, "running") : null,
        s.service
          ? h("button.quiet.start", { on: { click: () => act(`start ${s.name}`, () => call("skill.start", { name: s.name, owner: "system" })) } }, "Start (system)")
          : null,
      ),
      h("p", s.description),
      caps ? capabilities(caps) : s.service ? h("div.muted.small", "no capabilities block (legacy: granted its hooks and its owner's syscalls)") : null,
      (s.warnings ?? []).map((w) => h("div.warn.small", w)),
      h("div.muted.small.mono", s.dir),
    );
  }

  async function reindex() {
    act("re-index", () => call("skill.index.refresh"));
  }

  load();
  return () => {};
}

function owner(v) {
  return v.ownerType === "system" ? "system" : `${v.ownerType}:${v.ownerId}`;
}

function capabilities(c) {
  const row = (label, items) => (items && items.length ? h("div.cap", h("span.cap-label", label), items.map((i) => h("code.cap-item", typeof i === "string" ? i : JSON.stringify(i)))) : null);
  const limits = Object.entries(c.limits ?? {})
    .filter(([, v]) => v != null)
    .map(([k, v]) => `${k}: ${v}`);
  return h("div.caps", row("hooks", c.hooks), row("syscalls", c.syscalls), row("fs", c.fs), row("net", c.net), row("env", c.env), row("limits", limits));
}

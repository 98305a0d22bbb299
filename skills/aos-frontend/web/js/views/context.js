// The context the model sees now (`session.context.get`), beside the
// history: each message as the model gets it, folded placeholders included.

import { call } from "../api.js";
import { errorBox, h, mount } from "../dom.js";

/** Fills `root`; returns a function that reloads it. */
export function contextPanel(root, sessionId) {
  const body = h("div.context#context");
  const info = h("span.muted.small");
  mount(
    root,
    h("div.side-head", h("h3", "Context"), info, h("button.quiet", { on: { click: load } }, "Reload")),
    body,
  );
  let timer = null;
  async function load() {
    try {
      const c = await call("session.context.get", { sessionId });
      info.textContent = `revision ${c.contextRevision} · ~${c.estimatedTokens} tokens · ${c.messages.length} messages · ${c.foldedRefs?.length ?? 0} folded`;
      mount(body, c.messages.map(entry));
    } catch (e) {
      mount(body, errorBox(e));
    }
  }
  load();
  return () => {
    clearTimeout(timer);
    timer = setTimeout(load, 100);
  };
}

/** One context message: `wire` is what the model gets, `aos` where it came from. */
function entry({ wire = {}, aos = {} }) {
  const text =
    typeof wire.content === "string"
      ? wire.content
      : Array.isArray(wire.content)
        ? wire.content.map((c) => c.text ?? JSON.stringify(c)).join("\n")
        : "";
  const calls = (wire.tool_calls ?? []).map((c) => h("code.cmd.small", "$ ", bashCommand(c)));
  return h(
    `div.ctx-msg.role-${wire.role}`,
    h("span.who.small", wire.role ?? "?", aos.kind ? ` · ${aos.kind}` : "", wire.tool_call_id ? ` · ${wire.tool_call_id}` : ""),
    text ? h("pre.ctx-text", text.length > 4000 ? `${text.slice(0, 4000)}…` : text) : null,
    calls,
  );
}

function bashCommand(c) {
  try {
    return JSON.parse(c.function?.arguments ?? "{}").command ?? c.function?.arguments;
  } catch {
    return c.function?.arguments ?? "";
  }
}

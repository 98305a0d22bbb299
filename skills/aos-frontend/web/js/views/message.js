// One history message rendered for people: text as markdown, each command
// with its output (collapsible; folded outputs with their size and a read
// action), and the kernel's facts (skill loads, compaction, interrupts, a2a,
// bootstrap) as one-line markers.

import { call } from "../api.js";
import { bytes, errorBox, h, mount } from "../dom.js";
import { markdown } from "../markdown.js";

/** The element of message `m`; `ctx.sessionId` names its session. */
export function renderMessage(m, ctx) {
  const meta = m.metadata ?? {};
  const who = meta.origin === "human" ? "you" : meta.origin === "agent" && m.role === "user" ? "agent" : m.role;
  const el = h(
    `article.msg.role-${m.role}`,
    { dataset: { seq: meta.seq, messageId: m.id } },
    h(
      "header.msg-head",
      h("span.who", who),
      meta.summary ? h("span.pill.pill-service", "summary") : null,
      meta.fromAgentId ? h("span.muted.small", ` from ${meta.fromAgentId}`) : null,
      h("span.seq.muted.small", `#${meta.seq}`),
      h("time.muted.small", { datetime: meta.createdAt ?? "" }, (meta.createdAt ?? "").slice(11, 19)),
    ),
  );
  for (const p of m.parts ?? []) el.append(renderPart(p, m, ctx));
  return el;
}

function renderPart(p, m, ctx) {
  switch (p.type) {
    case "text": {
      const d = h("div.md");
      d.innerHTML = markdown(p.text);
      return d;
    }
    case "tool-bash":
      return p.state === "input-available" ? command(p) : result(p, m, ctx);
    case "data-skill-load":
      return fact("skill", `skill loaded: ${p.data?.name ?? "?"}`, p.data?.cause, p.data?.skillText);
    case "data-skill-unload":
      return fact("skill", `skill unloaded: ${p.data?.name ?? "?"}`);
    case "data-compaction":
      return fact(
        "compaction",
        `compacted: messages ${p.data?.fromSeq ?? "?"}–${p.data?.toSeq ?? "?"}`,
        p.data?.auto ? (p.data?.overflow ? "automatic, context overflow" : "automatic") : "asked",
      );
    case "data-interrupt":
      return fact("interrupt", `interrupted: ${p.data?.reason ?? ""}`);
    case "data-bootstrap":
      return fact(
        "bootstrap",
        `bootstrap ${p.data?.phase ?? ""}`,
        (p.data?.plannedNames ?? []).join(", "),
      );
    case "data-a2a":
      return fact("a2a", `a2a ${p.data?.mode ?? ""} from ${p.data?.fromAgentId ?? "?"}`, p.data?.fromSessionId);
    default:
      return h("pre.raw", JSON.stringify(p, null, 2));
  }
}

function command(p) {
  return h(
    "div.tool.tool-call.running",
    { dataset: { call: p.toolCallId } },
    h("code.cmd", "$ ", p.input?.command ?? ""),
    h("span.state.muted.small", "running…"),
  );
}

function result(p, m, ctx) {
  const out = p.output ?? {};
  const failed = p.state === "output-error";
  const exit = failed ? "error" : `exit ${out.exitCode ?? "?"}`;
  const text = failed ? p.errorText ?? "" : out.visibleResult ?? "";
  const folded = !failed && out.contentId;
  const size = folded ? `folded · ${bytes(out.sizeChars)} · ${lines(out.lineCount)}` : lines(text.replace(/\n$/, "").split("\n").length);
  const body = folded ? foldedBody(out, p, m, ctx) : h("pre.out", text);
  const details = h(
    `details.tool.tool-result${failed ? ".failed" : ""}`,
    { dataset: { call: p.toolCallId }, open: folded || text.length < 2000 },
    h("summary", h("code.cmd", "$ ", p.input?.command ?? ""), " ", h("span.muted.small", `${exit} · ${size}`)),
    body,
  );
  return details;
}

const lines = (n) => `${n} line${n === 1 ? "" : "s"}`;

const PAGE_LINES = 1000;

/**
 * A folded output: its preview, then read a page of PAGE_LINES lines at a
 * time (`content.read`) — the page holds one page, never the whole output.
 */
function foldedBody(out, p, m, ctx) {
  const pre = h("pre.out", out.preview ?? "");
  const range = h("span.small.muted.range");
  const status = h("span.small");
  let offset = -PAGE_LINES;
  const show = async (to) => {
    try {
      const page = await call("content.read", { contentId: out.contentId, offset: to, limit: PAGE_LINES });
      offset = to;
      pre.textContent = page.content;
      const last = Math.min(to + PAGE_LINES, page.totalLines);
      range.textContent = `lines ${to + 1}–${last} of ${page.totalLines}`;
      prev.disabled = to === 0;
      next.disabled = last >= page.totalLines;
    } catch (e) {
      mount(status, errorBox(e));
    }
  };
  const prev = h("button.quiet.prev", { disabled: true, on: { click: () => show(Math.max(offset - PAGE_LINES, 0)) } }, "← Previous");
  const next = h("button.quiet.read", { on: { click: () => show(offset + PAGE_LINES) } }, "Read the output");
  next.addEventListener("click", () => (next.textContent = "Next →"), { once: true });
  const unfold = h(
    "button.quiet.unfold",
    {
      on: {
        click: async () => {
          try {
            await call("session.context.unfold", { sessionId: ctx.sessionId, messageId: m.id, partId: p.id });
            mount(status, "unfolded: the model sees it in full from its next turn");
          } catch (e) {
            mount(status, errorBox(e));
          }
        },
      },
    },
    "Unfold for the model",
  );
  return h("div.folded", pre, h("div.actions", prev, next, range, unfold, status));
}

function fact(kind, text, detail, more) {
  const line = h(`div.fact.fact-${kind}`, h("span", text), detail ? h("span.muted.small", ` · ${detail}`) : null);
  if (!more) return line;
  return h(`details.fact.fact-${kind}`, h("summary", text, detail ? h("span.muted.small", ` · ${detail}`) : null), h("pre.out", more));
}

/** Marks the command of `toolCallId` under `root` as finished. */
export function settle(root, toolCallId) {
  for (const el of root.querySelectorAll(`.tool-call.running[data-call="${CSS.escape(toolCallId)}"]`)) {
    el.classList.remove("running");
    el.querySelector(".state")?.remove();
  }
}

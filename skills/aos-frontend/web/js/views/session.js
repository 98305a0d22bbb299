// One session: its history as a pure view of the durable log, live.
//
// The history is cut into chunks of CHUNK messages by seq. Every chunk has a
// box in the scroller; only boxes near the viewport hold elements (an
// IntersectionObserver fills them, fetching the chunk's seq range once, and
// empties those that scroll far away, keeping their measured height), so a
// session of 10 000 messages costs the DOM of a few chunks. Live events
// (`/v1/events?sessionId=…`: `context.ingest` for every message written,
// `dispatch.*` for deltas, tool calls and the end) extend the tail.

import { call, follow } from "../api.js";
import { errorBox, h, mount, pill } from "../dom.js";
import { renderMessage, settle } from "./message.js";
import { contextPanel } from "./context.js";

const CHUNK = 50;
const ESTIMATE = 56; // px per message before it was measured
const MARGIN = "1200px 0px";

export function sessionView(root, sessionId) {
  const abort = new AbortController();
  const s = {
    id: sessionId,
    scb: null,
    last: 0, // the highest seq known
    opened: Infinity, // the highest seq when the view opened
    early: [], // events that came before the opening read
    chunks: new Map(), // index -> {box, messages|null, rendered}
    stick: true, // follow the tail while the reader is at the bottom
  };
  const head = h("div.session-head");
  const scroller = h("div.history#history", { tabindex: 0 });
  const live = h("div.live-delta#live-delta", { hidden: true });
  const status = h("div.small#composer-status");
  const side = h("aside.side");
  const composer = composerOf(s, status);
  mount(
    root,
    h(
      "div.session",
      h("div.session-main", head, scroller, live, composer, status),
      side,
    ),
  );
  scroller.addEventListener("scroll", () => {
    s.stick = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
  });
  const observer = new IntersectionObserver((entries) => visible(s, entries), { root: scroller, rootMargin: MARGIN });
  s.observer = observer;
  s.scroller = scroller;
  s.live = live;
  s.head = head;
  s.status = status;
  s.refreshContext = contextPanel(side, sessionId);

  // Subscribed first, read second: nothing written in between is missed.
  let begun = false;
  const begin = () => {
    if (begun) return;
    begun = true;
    open(s).catch((e) => mount(scroller, errorBox(e)));
  };
  follow(`/v1/events?sessionId=${encodeURIComponent(sessionId)}`, (name, data) => onEvent(s, name, data), {
    signal: abort.signal,
    onState: (st) => {
      s.liveState = st;
      head.querySelector(".live")?.replaceWith(liveBadge(st));
      if (st === "live") begin();
    },
  });
  const fallback = setTimeout(begin, 3000);
  return () => {
    clearTimeout(fallback);
    abort.abort();
    observer.disconnect();
  };
}

async function open(s) {
  s.scb = await call("session.get", { sessionId: s.id });
  header(s);
  s.last = s.scb.lastMessageSeq ?? 0;
  s.opened = s.last;
  for (let i = 0; i <= chunkOf(s.last); i++) addChunk(s, i);
  // Open at the newest messages.
  await fill(s, chunkOf(s.last));
  toBottom(s);
  for (const [name, data] of s.early.splice(0)) onEvent(s, name, data);
}

function header(s) {
  const scb = s.scb;
  mount(
    s.head,
    h(
      "div.title-row",
      h("h2#session-title", scb.title || "(untitled session)"),
      pill(scb.status),
      " ",
      h("span#session-phase", pill(scb.phase)),
      liveBadge(s.liveState ?? "connecting"),
    ),
    h(
      "div.muted.small.mono",
      scb.sessionId,
      " · agent ",
      h("a", { href: `#view=sessions&agent=${scb.agentId}` }, scb.agentId),
      ` · ${scb.messageCount} messages · revision ${scb.revision}`,
    ),
  );
}

function liveBadge(state) {
  return h(`span.live.live-${state}`, { title: "live updates" }, state === "live" ? "● live" : `○ ${state}`);
}

const chunkOf = (seq) => Math.floor(Math.max(seq - 1, 0) / CHUNK);

function addChunk(s, i) {
  if (s.chunks.has(i)) return s.chunks.get(i);
  const box = h("div.chunk", { dataset: { chunk: i } });
  // A chunk past the history known at opening fills from live events only.
  const fresh = i * CHUNK + 1 > s.opened;
  box.style.height = fresh ? "" : `${CHUNK * ESTIMATE}px`;
  const c = { box, messages: [], rendered: false, fetched: false };
  s.chunks.set(i, c);
  s.scroller.append(box);
  s.observer.observe(box);
  return c;
}

function visible(s, entries) {
  for (const e of entries) {
    const i = Number(e.target.dataset.chunk);
    if (e.isIntersecting) fill(s, i);
    else empty(s, i);
  }
}

/** Renders chunk `i`, fetching its messages the first time. */
async function fill(s, i) {
  const c = s.chunks.get(i);
  if (!c || c.rendered) return;
  c.rendered = true;
  if (!c.fetched) {
    try {
      const from = i * CHUNK + 1;
      const page = await call("session.history.list", {
        sessionId: s.id,
        fromSeq: from,
        toSeq: from + CHUNK - 1,
        limit: CHUNK,
      });
      for (const m of page.messages) put(c, m);
      c.fetched = true;
    } catch (e) {
      c.rendered = false;
      mount(c.box, errorBox(e));
      return;
    }
  }
  if (!c.rendered) return;
  mount(c.box, c.messages.map((m) => renderMessage(m, { sessionId: s.id })));
  settleAll(s, c.messages);
  c.box.style.height = "";
  if (s.stick) toBottom(s);
}

function settleAll(s, messages) {
  for (const m of messages) {
    for (const p of m.parts ?? []) {
      if (p.type === "tool-bash" && p.state !== "input-available") settle(s.scroller, p.toolCallId);
    }
  }
}

/** Empties chunk `i`, keeping its place at its measured height. */
function empty(s, i) {
  const c = s.chunks.get(i);
  if (!c || !c.rendered || i === chunkOf(s.last)) return;
  const height = c.box.offsetHeight;
  c.rendered = false;
  c.box.style.height = `${height}px`;
  c.box.replaceChildren();
}

/** Adds `m` to chunk `c` in seq order, once. */
function put(c, m) {
  const seq = m.metadata.seq;
  if (c.messages.some((x) => x.metadata.seq === seq)) return false;
  c.messages.push(m);
  c.messages.sort((a, b) => a.metadata.seq - b.metadata.seq);
  return true;
}

function toBottom(s) {
  s.scroller.scrollTop = s.scroller.scrollHeight;
}

/** A message written to the session (live). */
function arrived(s, m) {
  const seq = m.metadata.seq;
  s.last = Math.max(s.last, seq);
  const i = chunkOf(seq);
  for (let k = 0; k <= i; k++) addChunk(s, k);
  const c = s.chunks.get(i);
  if (!put(c, m)) return;
  if (c.rendered && c.fetched) {
    const el = renderMessage(m, { sessionId: s.id });
    const after = [...c.box.children].find((x) => Number(x.dataset.seq) > seq);
    c.box.insertBefore(el, after ?? null);
  } else if (!c.rendered && s.stick) {
    fill(s, i);
  }
  settleAll(s, [m]);
  if (m.role === "assistant") {
    s.live.hidden = true;
    s.live.textContent = "";
  }
  if (s.stick) toBottom(s);
}

function onEvent(s, name, data) {
  if (!Number.isFinite(s.opened)) {
    s.early.push([name, data]); // replayed once the opening read is in
    return;
  }
  const p = data?.payload ?? {}; // the event's payload, as the hook got it
  switch (name) {
    case "context.ingest":
      if (p.message) arrived(s, p.message);
      break;
    case "dispatch.message":
      if (p.type === "delta") {
        s.live.hidden = false;
        s.live.textContent += p.text;
        if (s.stick) toBottom(s);
      }
      break;
    case "dispatch.done":
      mount(s.status, `${p.dispatchId ?? "dispatch"} ended: ${p.status ?? "done"}`);
      refresh(s);
      break;
    case "session.interrupted":
    case "session.compaction.after":
      refresh(s);
      break;
    default:
      break;
  }
  if (name.startsWith("dispatch.") && s.scb && s.scb.phase === "idle") refresh(s);
}

async function refresh(s) {
  clearTimeout(s.pending);
  s.pending = setTimeout(async () => {
    try {
      s.scb = await call("session.get", { sessionId: s.id });
      header(s);
      s.refreshContext();
    } catch {
      /* the next event retries */
    }
  }, 50);
}

/** Send, queue, interrupt. */
function composerOf(s, status) {
  const text = h("textarea#composer-text", { rows: 3, placeholder: "Message the agent (Ctrl+Enter sends)", "aria-label": "Message" });
  const queue = h("input#composer-queue", { type: "checkbox" });
  const send = h("button#send", { type: "submit" }, "Send");
  const interrupt = h("button.danger#interrupt", { type: "button", on: { click: stop } }, "Interrupt");
  const form = h(
    "form.composer",
    { on: { submit: go } },
    text,
    h("div.composer-actions", h("label.small", queue, " queue if busy"), send, interrupt),
  );
  text.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) form.requestSubmit();
  });
  async function go(ev) {
    ev.preventDefault();
    const content = text.value.trim();
    if (!content) return;
    send.disabled = true;
    try {
      const params = { sessionId: s.id, message: { role: "user", content }, idempotencyKey: `ui-${crypto.randomUUID()}` };
      if (queue.checked) params.queue = true;
      const d = await call("session.dispatch", params);
      text.value = "";
      mount(status, d.queued ? `queued as ${d.dispatchId}` : `running ${d.dispatchId}`);
      s.stick = true;
      refresh(s);
    } catch (e) {
      mount(status, errorBox(e));
    } finally {
      send.disabled = false;
    }
  }
  async function stop() {
    try {
      await call("session.interrupt", { sessionId: s.id, reason: "interrupted from the web console" });
      mount(status, "interrupted");
    } catch (e) {
      mount(status, errorBox(e));
    }
  }
  return form;
}

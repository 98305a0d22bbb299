// The daemon's API as the console uses it: syscalls (`POST /v1/syscall`) and
// server-sent event streams read with fetch (so the token travels in the
// Authorization header, never in a URL).

const TOKEN_KEY = "aos.token";

/** The token of this tab, or null. */
export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** A failed syscall: `code` and `message` as the kernel said them. */
export class ApiError extends Error {
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

/** Runs `op` with `params`; resolves to `data`, rejects with ApiError. */
export async function call(op, params = {}) {
  let resp;
  try {
    resp = await fetch("/v1/syscall", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token() ?? ""}` },
      body: JSON.stringify({ op, ...params }),
    });
  } catch (e) {
    throw new ApiError("network", `the daemon cannot be reached: ${e.message}`, 0);
  }
  let doc;
  try {
    doc = await resp.json();
  } catch {
    throw new ApiError("internal", `the daemon answered ${resp.status} without JSON`, resp.status);
  }
  if (!doc.ok) {
    const e = doc.error ?? {};
    if (resp.status === 401) window.dispatchEvent(new CustomEvent("aos:unauthorized"));
    throw new ApiError(e.code ?? "internal", e.message ?? "request failed", resp.status);
  }
  return doc.data;
}

/**
 * Follows the SSE stream at `path`, calling `onEvent(name, data, id)` for
 * each event, until `signal` aborts. Reconnects after a drop (with
 * `Last-Event-ID`), calling `onState("live" | "reconnecting")`.
 */
export async function follow(path, onEvent, { signal, onState = () => {} } = {}) {
  let lastId = null;
  let backoff = 500;
  while (!signal?.aborted) {
    try {
      const headers = { Authorization: `Bearer ${token() ?? ""}` };
      if (lastId) headers["Last-Event-ID"] = lastId;
      const resp = await fetch(path, { headers, signal });
      if (resp.status === 401) {
        window.dispatchEvent(new CustomEvent("aos:unauthorized"));
        return;
      }
      if (!resp.ok || !resp.body) throw new Error(`stream answered ${resp.status}`);
      onState("live");
      backoff = 500;
      for await (const ev of events(resp.body)) {
        if (ev.id) lastId = ev.id;
        let data = ev.data;
        try {
          data = JSON.parse(ev.data);
        } catch {
          /* keepalive text */
        }
        onEvent(ev.event, data, ev.id);
      }
      if (path.includes("/dispatch/")) return; // a dispatch stream ends after `done`
    } catch (e) {
      if (signal?.aborted) return;
    }
    onState("reconnecting");
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(backoff * 2, 5000);
  }
}

/** Parses an SSE byte stream into `{event, data, id}` records. */
async function* events(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let end;
    while ((end = buf.search(/\r?\n\r?\n/)) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end).replace(/^\r?\n\r?\n/, "");
      const ev = { event: "message", data: "", id: null };
      const data = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith(":")) continue;
        const i = line.indexOf(":");
        const field = i < 0 ? line : line.slice(0, i);
        const val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
        if (field === "event") ev.event = val;
        else if (field === "data") data.push(val);
        else if (field === "id") ev.id = val;
      }
      if (data.length === 0) continue;
      ev.data = data.join("\n");
      yield ev;
    }
  }
}

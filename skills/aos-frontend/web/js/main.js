// The console's entry: login (by `#token=…` in the fragment or the form),
// then a router over the fragment: `#view=sessions|skills|log|system`,
// `#session=ID` (a deep link to one session).

import { call, setToken, token } from "./api.js";
import { mount } from "./dom.js";
import { sessionsView } from "./views/sessions.js";
import { sessionView } from "./views/session.js";
import { skillsView } from "./views/skills.js";
import { logView } from "./views/log.js";
import { systemView } from "./views/system.js";

const $ = (id) => document.getElementById(id);
let current = null; // the mounted view's cleanup

/** The fragment as parameters (`#a=1&b=2`). */
export function fragment() {
  return new URLSearchParams(location.hash.replace(/^#/, ""));
}

/** Navigates to a fragment built from `params`. */
export function go(params) {
  location.hash = new URLSearchParams(params).toString();
}

async function login(candidate) {
  setToken(candidate);
  try {
    await call("system.get");
    return null;
  } catch (e) {
    setToken(null);
    return e.status === 401
      ? "That token was refused: use the operator token ($AOS_HOME/token)."
      : `${e.code}: ${e.message}`;
  }
}

function showLogin(error) {
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-error").hidden = !error;
  $("login-error").textContent = error ?? "";
  $("login-token").focus();
}

async function showApp() {
  $("login").hidden = true;
  $("app").hidden = false;
  route();
  health();
}

async function health() {
  try {
    const resp = await fetch("/health");
    const h = await resp.json();
    $("health").textContent = `${h.status} · v${h.version} · up ${h.uptimeS} s`;
  } catch {
    $("health").textContent = "daemon unreachable";
  }
}

function route() {
  if (!token()) return showLogin(null);
  const f = fragment();
  if (current) current();
  current = null;
  const main = $("main");
  mount(main);
  const session = f.get("session");
  const view = session ? "session" : f.get("view") ?? "sessions";
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.dataset.view === view || (view === "session" && a.dataset.view === "sessions"));
  }
  const views = { sessions: sessionsView, skills: skillsView, log: logView, system: systemView };
  document.title = `AgentOS · ${session ?? view}`;
  current = session ? sessionView(main, session) : (views[view] ?? sessionsView)(main, f);
}

async function start() {
  // A token in the fragment is taken once and removed from the address bar
  // (and so from the history), before anything else reads the URL.
  const f = fragment();
  const given = f.get("token");
  if (given) {
    f.delete("token");
    history.replaceState(null, "", `${location.pathname}${f.toString() ? `#${f}` : ""}`);
    const error = await login(given);
    if (error) return showLogin(error);
    return showApp();
  }
  if (token()) return showApp();
  showLogin(null);
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const error = await login($("login-token").value.trim());
  if (error) return showLogin(error);
  $("login-token").value = "";
  showApp();
});

$("logout").addEventListener("click", () => {
  setToken(null);
  if (current) current();
  current = null;
  showLogin(null);
});

window.addEventListener("aos:unauthorized", () => {
  setToken(null);
  showLogin("The daemon no longer accepts this token: log in again.");
});

window.addEventListener("hashchange", () => {
  if (fragment().get("token")) return start();
  if (token()) route();
});

start();

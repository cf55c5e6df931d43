// The admin console: logs in, then renders snapshots pushed over Server-Sent Events.

import { drawChart } from "./chart.js";

const API = "/admin/api";
const OTP_SERIES = [
  ["requested", "Requested"],
  ["mailed", "Mailed"],
  ["verified", "Verified"],
  ["failed", "Failed"],
  ["locked", "Locked"],
  ["rate_limited", "Rate-limited"],
];

const $ = (id) => document.getElementById(id);
const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);
let stream = null;
let latest = null;

// ---- theme -------------------------------------------------------------------------

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
}
const storedTheme = localStorage.getItem("confab-theme");
applyTheme(storedTheme ?? (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light"));
matchMedia("(prefers-color-scheme: dark)").addEventListener("change", (e) => {
  if (!localStorage.getItem("confab-theme")) applyTheme(e.matches ? "dark" : "light");
});
$("theme").addEventListener("click", () => {
  const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
  localStorage.setItem("confab-theme", next);
  applyTheme(next);
  if (latest) render(latest);
});

// ---- helpers -----------------------------------------------------------------------

async function call(method, path, body) {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: body ? { "content-type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  let data = {};
  try {
    data = await response.json();
  } catch {
    // Not JSON (a proxy error page): keep the status.
  }
  if (!response.ok) {
    const error = new Error(data.message ?? `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return data;
}

function toast(text) {
  const node = $("toast");
  node.textContent = text;
  node.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (node.hidden = true), 3500);
}

function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function cell(row, text, className) {
  const td = row.insertCell();
  if (text !== undefined) td.textContent = text;
  if (className) td.className = className;
  return td;
}

function button(label, className, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = className;
  b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}

// ---- login -------------------------------------------------------------------------

function showLogin(message = "") {
  stopStream();
  $("dashboard").hidden = true;
  $("meta").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
}

function selectTab(which) {
  $("tab-token").setAttribute("aria-selected", String(which === "token"));
  $("tab-email").setAttribute("aria-selected", String(which === "email"));
  $("token-form").hidden = which !== "token";
  $("email-form").hidden = which !== "email";
  $("login-error").textContent = "";
}
$("tab-token").addEventListener("click", () => selectTab("token"));
$("tab-email").addEventListener("click", () => selectTab("email"));

async function openSession(credential) {
  try {
    await call("POST", `${API}/session`, credential);
    $("token").value = "";
    showDashboard();
  } catch (error) {
    $("login-error").textContent = error.message;
  }
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  openSession({ token: $("token").value });
});

$("email-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const email = $("email").value.trim();
  try {
    if ($("otp-row").hidden) {
      await call("POST", "/api/v1/login", { email });
      $("otp-row").hidden = false;
      $("email-submit").textContent = "Verify and open console";
      $("login-error").textContent = "";
      $("otp").focus();
    } else {
      const { token } = await call("POST", "/api/v1/verify", { email, otp: $("otp").value.trim() });
      await openSession({ jwt: token });
    }
  } catch (error) {
    $("login-error").textContent = error.message;
  }
});

$("logout").addEventListener("click", async () => {
  try {
    await call("DELETE", `${API}/session`);
  } finally {
    showLogin("Logged out.");
  }
});

// ---- live data ---------------------------------------------------------------------

function setLive(state, text) {
  $("live").dataset.state = state;
  $("live-text").textContent = text;
}

function stopStream() {
  if (stream) stream.close();
  stream = null;
}

function startStream() {
  stopStream();
  setLive("connecting", "Connecting…");
  stream = new EventSource(`${API}/stream`);
  stream.addEventListener("snapshot", (event) => {
    setLive("live", "Live");
    latest = JSON.parse(event.data);
    render(latest);
  });
  const source = stream;
  source.addEventListener("error", async () => {
    if (source !== stream) return;
    setLive("down", "Reconnecting…");
    // EventSource retries by itself after a dropped connection, but gives up after an
    // error status: then find out whether the session ended, or try again shortly.
    if (source.readyState !== EventSource.CLOSED) return;
    try {
      await call("GET", `${API}/session`);
      setTimeout(() => source === stream && startStream(), 2000);
    } catch (error) {
      if (error.status === 401) showLogin("Your session ended; log in again.");
      else setTimeout(() => source === stream && startStream(), 5000);
    }
  });
}

async function showDashboard() {
  $("login").hidden = true;
  $("dashboard").hidden = false;
  $("meta").hidden = false;
  $("logout").hidden = false;
  startStream();
}

async function act(method, path, done) {
  try {
    const result = await call(method, path);
    toast(done(result));
  } catch (error) {
    if (error.status === 401) return showLogin("Your session ended; log in again.");
    toast(error.message);
  }
}

$("requeue").addEventListener("click", () =>
  act("POST", `${API}/mail/requeue-dead`, (r) => `${r.requeued} mail${r.requeued === 1 ? "" : "s"} re-queued`),
);

// ---- rendering ---------------------------------------------------------------------

function seriesOf(snapshot, name) {
  return snapshot.traffic.series.find((s) => s.name === name);
}

function renderStats(s) {
  byTestId("stat-online").textContent = s.onlineCount;
  $("hint-online").textContent = s.onlineCount > s.online.length ? `first ${s.online.length} listed` : "across all instances";
  byTestId("stat-connections").textContent = s.connections;
  const q = s.mailQueue;
  const depth = byTestId("stat-queue-depth");
  depth.textContent = q.depth ?? "?";
  depth.className = `value${q.error ? " bad" : q.depth > 0 ? " warn" : ""}`;
  $("hint-queue").textContent = q.error ? q.error : q.backend;
  const dead = byTestId("stat-dead-letters");
  dead.textContent = q.deadLetters ?? "?";
  dead.className = `value${q.deadLetters > 0 ? " bad" : ""}`;
  $("requeue").disabled = !(q.deadLetters > 0);
  const messages = seriesOf(s, "messages");
  byTestId("stat-messages-minute").textContent = messages.perMinute.at(-1);
  $("hint-messages").textContent = `${messages.total} in the last hour`;
  $("instance").textContent = `${s.instance} · v${s.version} · up ${ago(s.startedAt).replace(" ago", "")}`;
}

function renderTraffic(s) {
  $("traffic-error").hidden = !s.trafficError;
  $("traffic-error").textContent = s.trafficError ? `Traffic counts unavailable: ${s.trafficError}` : "";
  for (const [name] of OTP_SERIES) byTestId(`otp-${name}`).textContent = seriesOf(s, name).total;
  const legend = $("legend");
  if (!legend.children.length) {
    for (const [name, label] of OTP_SERIES) {
      const li = document.createElement("li");
      const swatch = document.createElement("i");
      swatch.style.background = `var(--s-${name})`;
      li.append(swatch, label);
      legend.appendChild(li);
    }
  }
  const otp = OTP_SERIES.map(([name, label]) => ({ ...seriesOf(s, name), label }));
  drawChart($("otp-chart"), { from: s.traffic.from, series: otp });
  const messages = { ...seriesOf(s, "messages"), label: "Messages" };
  drawChart($("message-chart"), { from: s.traffic.from, series: [messages], kind: "bar" });
}

function renderOnline(s) {
  const body = $("online-table").tBodies[0];
  body.replaceChildren();
  for (const user of s.online) {
    const row = body.insertRow();
    row.dataset.userId = user.id;
    const who = cell(row);
    const name = document.createElement("div");
    name.className = "who";
    name.textContent = user.name ?? user.id;
    const email = document.createElement("div");
    email.className = "sub";
    email.textContent = user.email ?? "unknown user";
    who.append(name, email);
    const where = cell(row);
    for (const instance of user.instances) {
      const pill = document.createElement("span");
      pill.className = "pill";
      pill.textContent = instance;
      where.appendChild(pill);
    }
    cell(row, user.since ? ago(user.since) : "–").title = user.since ? new Date(user.since).toLocaleString() : "";
    cell(row, user.sockets ?? "–");
    const actions = cell(row, undefined, "actions-cell");
    const label = user.name ?? user.email ?? user.id;
    actions.append(
      button("Disconnect", "small", () =>
        act("POST", `${API}/users/${user.id}/disconnect`, (r) => `${label}: ${r.disconnected} socket(s) closed`),
      ),
      button("Revoke tokens", "danger", () => {
        if (confirm(`Revoke every token of ${label}? They will have to log in again.`)) {
          act("POST", `${API}/users/${user.id}/revoke`, () => `${label}: tokens revoked`);
        }
      }),
    );
  }
  $("online-empty").hidden = s.online.length > 0;
  $("online-note").textContent = s.onlineCount ? `${s.onlineCount} user${s.onlineCount === 1 ? "" : "s"}` : "";
}

function renderFailures(s) {
  const body = $("failures-table").tBodies[0];
  body.replaceChildren();
  for (const f of s.mailFailures) {
    const row = body.insertRow();
    cell(row, clock(f.at)).title = new Date(f.at).toLocaleString();
    cell(row, f.to);
    const attempt = cell(row, `#${f.attempt}`);
    if (f.deadLettered) {
      const pill = document.createElement("span");
      pill.className = "pill bad";
      pill.textContent = "dead-lettered";
      attempt.append(" ", pill);
    }
    cell(row, f.error, "err");
  }
  $("failures-empty").hidden = s.mailFailures.length > 0;
}

function renderBackends(s) {
  const list = $("backends");
  list.replaceChildren();
  for (const b of s.backends) {
    const li = document.createElement("li");
    li.className = b.ok ? "up" : "down";
    const dot = document.createElement("span");
    dot.className = "dot";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = b.name.replace("_", " ");
    const detail = document.createElement("span");
    detail.className = "detail";
    detail.textContent = b.ok ? b.backend : `${b.backend}: ${b.error}`;
    li.append(dot, name, detail);
    list.appendChild(li);
  }
}

function render(s) {
  renderStats(s);
  renderTraffic(s);
  renderOnline(s);
  renderFailures(s);
  renderBackends(s);
}

addEventListener("resize", () => latest && renderTraffic(latest));
// Snapshots come only when something changes; keep "online since" and uptime current.
setInterval(() => latest && !$("dashboard").hidden && (renderStats(latest), renderOnline(latest)), 15_000);

// ---- start -------------------------------------------------------------------------

call("GET", `${API}/session`).then(showDashboard, () => showLogin());

// The admin console in a real browser (Debian's chromium, driven by playwright-core)
// against a running confab: refuses a wrong token, logs in, shows a Socket.IO user come
// online, shows the mail queue rise while the SMTP server is frozen and drain when it
// resumes, shows OTP counters move, disconnects the user, and saves screenshots.
//
// Env: CONFAB_URL, ADMIN_TOKEN, ADMIN_EMAIL (listed in admin_emails), USER_ID,
// USER_EMAIL, USER_TOKEN, SMTP_PID, MAILDIR (where the SMTP server writes mails), EMAILS
// (comma-separated), MESSAGES_SENT (messages posted before), ARTIFACTS (screenshot
// directory), CHROMIUM (optional path).

import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { launchChromium } from "./browser.mjs";
import { io } from "socket.io-client";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env("CONFAB_URL");
const artifacts = env("ARTIFACTS");
const smtpPid = Number(env("SMTP_PID"));
const emails = env("EMAILS").split(",");
mkdirSync(artifacts, { recursive: true });

const report = { ok: false, steps: [] };
const step = (name, detail = {}) => {
  report.steps.push({ name, ...detail });
  console.error(`step: ${name} ${JSON.stringify(detail)}`);
};

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

// The code in the newest mail to `to`, read from the SMTP server's Maildir.
async function codeMailedTo(to) {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const dir = env("MAILDIR");
    let files = [];
    try {
      files = readdirSync(dir);
    } catch {
      // The folder appears with the first mail.
    }
    for (const file of files) {
      const mail = readFileSync(join(dir, file), "utf8");
      const addressed = mail.split(/\r?\n/).some((l) => l.toLowerCase() === `to: ${to}`.toLowerCase());
      const code = mail.match(/Your OTP is (\d{6})/);
      if (addressed && code) return code[1];
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no code mailed to ${to}`);
}

const browser = await launchChromium();
let socket;
let smtpStopped = false;
try {
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 }, colorScheme: "light" });
  const page = await context.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  // Refusals the scenario provokes are expected (401: the session probe before login,
  // the wrong token, after logout; 403: a non-admin's code); any other error fails it.
  page.on("console", (m) => m.type() === "error" && !/status of 40[13]/.test(m.text()) && pageErrors.push(m.text()));
  const shot = (name) => page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
  const stat = (id) => page.locator(`[data-testid="${id}"]`);
  const number = async (id) => Number(await stat(id).textContent());
  // Waits until the console shows a value for `id` that is `op` (">=", "==", ">") `want`,
  // as pushed by the server. (No eval in the page: its CSP forbids it.)
  const waitFor = async (id, [op, want], what, timeout = 20_000) => {
    await page.waitForFunction(
      ([sel, op, want]) => {
        const el = document.querySelector(sel);
        const v = el && el.textContent !== "–" ? Number(el.textContent) : NaN;
        return op === ">=" ? v >= want : op === ">" ? v > want : v === want;
      },
      [`[data-testid="${id}"]`, op, want],
      { timeout, polling: 100 },
    ).catch(async () => {
      throw new Error(`${what}: ${id} stayed at ${await stat(id).textContent()}`);
    });
    return number(id);
  };

  // 1. A wrong token is refused and the console stays closed.
  await page.goto(`${base}/admin`);
  assert(page.url().endsWith("/admin/"), `redirected to /admin/, got ${page.url()}`);
  await page.locator("#token").fill("not-the-admin-token");
  await page.locator("#token-form button[type=submit]").click();
  await page.locator("#login-error", { hasText: "Wrong admin token" }).waitFor({ timeout: 10_000 });
  assert(await page.locator("#dashboard").isHidden(), "dashboard stays hidden after a wrong token");
  await shot("01-wrong-token-refused");
  step("wrong token refused");

  // 1b. An admin_emails user logs in with a mailed code; anyone else is told why not.
  await page.locator("#tab-email").click();
  await page.locator("#email").fill(env("USER_EMAIL"));
  await page.locator("#email-submit").click();
  await page.locator("#otp").fill(await codeMailedTo(env("USER_EMAIL")));
  await page.locator("#email-submit").click();
  await page.locator("#login-error", { hasText: "not an admin" }).waitFor({ timeout: 10_000 });
  await page.reload();
  await page.locator("#tab-email").click();
  await page.locator("#email").fill(env("ADMIN_EMAIL"));
  await page.locator("#email-submit").click();
  await page.locator("#otp").fill(await codeMailedTo(env("ADMIN_EMAIL")));
  await page.locator("#email-submit").click();
  await page.locator("#live[data-state=live]").waitFor({ timeout: 10_000 });
  await page.locator("#logout").click();
  await page.locator("#login").waitFor({ timeout: 5_000 });
  await page.locator("#tab-token").click();
  step("email-code login for admin_emails only");

  // 2. The right token opens the live console.
  await page.locator("#token").fill(env("ADMIN_TOKEN"));
  await page.locator("#token-form button[type=submit]").click();
  await page.locator("#live[data-state=live]").waitFor({ timeout: 10_000 });
  const onlineBefore = await waitFor("stat-online", [">=", 0], "first snapshot");
  // The two codes of the email logins above, once the worker has counted them.
  await waitFor("otp-mailed", [">=", 2], "codes of the email logins");
  const requestedBefore = await number("otp-requested");
  const mailedBefore = await number("otp-mailed");
  const limitedBefore = await number("otp-rate_limited");
  const messagesHour = Number((await page.locator("#hint-messages").textContent()).split(" ")[0]);
  assert(messagesHour >= Number(env("MESSAGES_SENT")), `messages in the last hour: ${messagesHour}`);
  assert((await page.locator("#message-chart rect.bar").count()) >= 1, "the messages chart has a bar");
  step("logged in", { onlineBefore, requestedBefore, mailedBefore, messagesHour });

  // 3. A Socket.IO client connects: the user appears, with one socket.
  socket = io(base, { auth: { token: env("USER_TOKEN") }, transports: ["websocket"], reconnection: false });
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
  const row = page.locator(`#online-table tr[data-user-id="${env("USER_ID")}"]`);
  await row.waitFor({ timeout: 10_000 });
  assert((await row.textContent()).includes(env("USER_EMAIL")), "the row names the user");
  assert((await row.locator("td").nth(3).textContent()) === "1", "one socket");
  await waitFor("stat-online", ["==", onlineBefore + 1], "online count");
  await waitFor("stat-connections", [">=", 1], "connections");
  await shot("02-user-online");
  step("user came online");

  // 4. Freeze the SMTP server, request codes: the queue fills and the console shows it.
  process.kill(smtpPid, "SIGSTOP");
  smtpStopped = true;
  for (const email of emails) {
    const r = await fetch(`${base}/api/v1/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email }),
    });
    assert(r.status === 200, `login for ${email}: ${r.status}`);
  }
  const again = await fetch(`${base}/api/v1/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: emails[0] }),
  });
  assert(again.status === 429, `a second code within a minute is refused, got ${again.status}`);
  const depthStalled = await waitFor("stat-queue-depth", [">", 0], "queue depth while SMTP is frozen");
  await waitFor("otp-requested", [">=", requestedBefore + emails.length], "requested counter");
  await waitFor("otp-rate_limited", [">=", limitedBefore + 1], "rate-limited counter");
  assert((await number("otp-mailed")) === mailedBefore, "nothing is mailed while SMTP is frozen");
  await page.waitForTimeout(1500);
  const depthHeld = await number("stat-queue-depth");
  assert(depthHeld > 0, "the queue stays full while SMTP is frozen");
  await shot("03-queue-stalled");
  step("queue rose while SMTP was frozen", { depthStalled, depthHeld });

  // 5. Resume it: the queue drains and the mailed counter catches up.
  process.kill(smtpPid, "SIGCONT");
  smtpStopped = false;
  await waitFor("stat-queue-depth", ["==", 0], "queue drains after SMTP resumes", 30_000);
  const mailed = await waitFor("otp-mailed", [">=", mailedBefore + emails.length], "mailed counter", 30_000);
  await shot("04-queue-drained");
  step("queue drained after SMTP resumed", { mailed });

  // 6. Disconnect the user from the console: the client is told, the row goes.
  const disconnected = new Promise((resolve) => socket.once("disconnect", resolve));
  await row.getByRole("button", { name: "Disconnect" }).click();
  const reason = await Promise.race([
    disconnected,
    new Promise((_, reject) => setTimeout(() => reject(new Error("socket not disconnected")), 10_000)),
  ]);
  assert(reason === "io server disconnect", `disconnected by the server, got ${reason}`);
  await row.waitFor({ state: "detached", timeout: 10_000 });
  step("disconnect action", { reason });

  // 7. Dark mode and a phone-sized screen.
  await page.locator("#theme").click();
  assert((await page.locator("html").getAttribute("data-theme")) === "dark", "dark theme applied");
  await shot("05-dashboard-dark");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(300);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert(overflow <= 1, `no sideways scrolling on a phone (overflow ${overflow}px)`);
  await shot("06-dashboard-phone");
  step("dark and phone layouts", { overflow });

  // 8. Logging out ends the session for the API too.
  await page.locator("#logout").click();
  await page.locator("#login").waitFor({ timeout: 5_000 });
  const after = await page.evaluate(async () => (await fetch("/admin/api/overview")).status);
  assert(after === 401, `overview after logout: ${after}`);
  step("logged out");

  // 9. A session ended elsewhere (another tab, expiry) brings the open console back to
  // the login screen by itself.
  await page.locator("#token").fill(env("ADMIN_TOKEN"));
  await page.locator("#token-form button[type=submit]").click();
  await page.locator("#live[data-state=live]").waitFor({ timeout: 10_000 });
  await page.evaluate(() => fetch("/admin/api/session", { method: "DELETE" }));
  await page.locator("#login-error", { hasText: "session ended" }).waitFor({ timeout: 15_000 });
  assert(await page.locator("#dashboard").isHidden(), "the dashboard closes with its session");
  assert(pageErrors.length === 0, `console errors: ${pageErrors.join(" | ")}`);
  step("ended session returns to login");
  report.ok = true;
} finally {
  if (smtpStopped) process.kill(smtpPid, "SIGCONT");
  socket?.close();
  await browser.close();
  console.log(JSON.stringify(report));
}

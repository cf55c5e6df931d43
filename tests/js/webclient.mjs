// The original web client's real-time behaviour in Chromium, with tests/web-client as a
// stand-in page: two users, each in their own browser context, log in the way the
// client does (token cookie from script), then exercise presence, typing, live
// messages (text and image), seen receipts and unread counts over the socket the page
// opens on its chat_service origin.
//
// Env: PAGE_A, PAGE_B (URLs to open), EXPECT_ORIGIN (where the pages must end up),
// TOKEN_A/B, USER_A/B, CHAT_ID, EXPECT ("realtime", or "refused" when the socket must
// be turned away), optional ADMIN_URL + ADMIN_TOKEN (the console must count both users),
// ARTIFACTS (screenshot directory), CHROMIUM (optional path).

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { launchChromium } from "./browser.mjs";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const report = { ok: false, steps: [] };
const step = (name, detail = {}) => {
  report.steps.push({ name, ...detail });
  console.error(`step: ${name} ${JSON.stringify(detail)}`);
};
function assert(condition, message) {
  if (!condition) throw new Error(message);
}

const chatId = env("CHAT_ID");
const [userA, userB] = [env("USER_A"), env("USER_B")];
const expectOrigin = env("EXPECT_ORIGIN");
const artifacts = process.env.ARTIFACTS;
if (artifacts) mkdirSync(artifacts, { recursive: true });

const browser = await launchChromium();

// Opens the page in a fresh context, stores the token as the login page does, and
// reloads so the app starts logged in (as after the verify page).
async function open(url, token, who) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(url);
  const origin = new URL(page.url()).origin;
  assert(origin === expectOrigin, `${who}: opened ${url}, ended on ${origin}, expected ${expectOrigin}`);
  await page.evaluate((t) => window.client.storeToken(t), token);
  await page.reload();
  await page.waitForFunction(() => ["connected", "refused"].includes(window.client?.socketState), null, {
    timeout: 15_000,
  });
  return { context, page, errors, who };
}

const state = (p, expr) => p.page.evaluate(expr);
// Calls window.client[method](...args) in p's page.
const act = (p, method, ...args) => p.page.evaluate(([m, args]) => window.client[m](...args), [method, args]);
// Waits until `p` has received event `name` whose payload has every field of `match`.
async function received(p, name, match, what) {
  try {
    const handle = await p.page.waitForFunction(
      ([name, match]) =>
        window.client.events.find(
          (e) =>
            e.name === name && Object.entries(match).every(([k, v]) => JSON.stringify(e.payload[k]) === JSON.stringify(v)),
        ),
      [name, match],
      { timeout: 5_000, polling: 20 },
    );
    return await handle.jsonValue();
  } catch {
    const seen = await state(p, () => window.client.events.map((e) => `${e.name} ${JSON.stringify(e.payload)}`));
    throw new Error(`${p.who} did not receive ${what} (${name} ${JSON.stringify(match)}); got: ${seen.join(" | ")}`);
  }
}
async function onlineIncludes(p, id, present, what) {
  await p.page
    .waitForFunction(([id, present]) => window.client.online.includes(id) === present, [id, present], {
      timeout: 5_000,
      polling: 20,
    })
    .catch(async () => {
      throw new Error(`${what}: ${p.who}'s online list is ${JSON.stringify(await state(p, () => window.client.online))}`);
    });
}

let a;
let b;
try {
  a = await open(env("PAGE_A"), env("TOKEN_A"), "A");
  b = await open(env("PAGE_B"), env("TOKEN_B"), "B");
  step("pages opened", { a: a.page.url(), b: b.page.url() });

  if (env("EXPECT") === "refused") {
    for (const p of [a, b]) {
      const [socket, error] = await state(p, () => [window.client.socketState, window.client.connectError]);
      assert(socket === "refused", `${p.who}: socket should be refused, is ${socket}`);
      assert(/no token/.test(error), `${p.who}: refusal names the missing token: ${error}`);
    }
    step("sockets refused without a credential");
    report.ok = true;
  } else {
    for (const p of [a, b]) {
      assert((await state(p, () => window.client.socketState)) === "connected", `${p.who}: socket connected`);
    }
    step("sockets connected", { transportA: await state(a, () => window.client.transport()) });

    // Presence: each sees the other online.
    await onlineIncludes(a, userB, true, "B online for A");
    await onlineIncludes(b, userA, true, "A online for B");
    step("presence: both online for each other");

    if (process.env.ADMIN_TOKEN) {
      const base = env("ADMIN_URL");
      const opened = await fetch(`${base}/admin/api/session`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ token: env("ADMIN_TOKEN") }),
      }).then((r) => r.json());
      const overview = await fetch(`${base}/admin/api/overview`, {
        headers: { authorization: `Bearer ${opened.session}` },
      }).then((r) => r.json());
      const ids = overview.online.map((u) => u.id);
      assert(overview.onlineCount === 2, `admin console counts 2 online, got ${overview.onlineCount}`);
      assert(ids.includes(userA) && ids.includes(userB), `admin console lists both: ${JSON.stringify(overview.online)}`);
      step("admin console counts both users", { onlineCount: overview.onlineCount });
    }

    // Both open the chat (the client only types into an open one); B's typing reaches A.
    await act(a, "openChat", chatId);
    await act(b, "openChat", chatId);
    await act(b, "typing", chatId);
    await received(a, "userTyping", { chatId, userId: userB }, "B typing");
    await act(b, "stopTyping", chatId);
    await received(a, "userStoppedTyping", { chatId, userId: userB }, "B stopped typing");
    step("typing indicator both ways of its life");

    // B sends while A has the chat open: A gets it live, it is stored seen, B gets the tick.
    const sent = await act(b, "send", chatId, "hello from B");
    assert(sent.message.seen === true, `stored seen while A views the chat: ${JSON.stringify(sent.message)}`);
    await received(a, "newMessage", { _id: sent.message._id, text: "hello from B" }, "B's message live");
    await received(b, "messagesSeen", { chatId, seenBy: userA, messageIds: [sent.message._id] }, "seen tick");
    step("live message to a viewer, seen at send, tick to the sender");

    // A leaves the chat; B sends an image: A gets it live, unseen, with an unread badge.
    await act(a, "closeChat", chatId);
    await a.page.waitForTimeout(200);
    const image = await act(b, "send", chatId, "", true);
    assert(image.message.messageType === "image" && image.message.seen === false, JSON.stringify(image.message));
    await received(a, "newMessage", { _id: image.message._id, messageType: "image" }, "B's image live");
    const loaded = await a.page.evaluate((url) => window.client.loadImage(url), image.message.image.url);
    assert(loaded.ok && loaded.width === 64, `A's page loads the image from ${image.message.image.url}: ${JSON.stringify(loaded)}`);
    const chatsA = await state(a, () => window.client.chatAll());
    const row = chatsA.find((c) => c.chat._id === chatId);
    assert(row.chat.unseenCount === 1, `unread badge 1 for A: ${JSON.stringify(row.chat)}`);
    assert(row.chat.latestMessage.text === "📷 Image", `preview: ${JSON.stringify(row.chat.latestMessage)}`);
    step("image message live, unread badge", { url: image.message.image.url });

    // B goes back to the chat list; A replies; B gets it live, opens the chat, A gets the tick.
    await act(b, "closeChat", chatId);
    await b.page.waitForTimeout(200);
    const reply = await act(a, "send", chatId, "hi B, from A");
    assert(reply.message.seen === false, "B is not viewing");
    await received(b, "newMessage", { _id: reply.message._id, text: "hi B, from A" }, "A's reply live");
    const history = await act(b, "openChat", chatId);
    assert(history.messages.some((m) => m._id === reply.message._id), "history has the reply");
    await received(a, "messagesSeen", { chatId, seenBy: userB }, "seen tick after B opened the chat");
    step("live message the other way, seen tick when read");

    if (artifacts) await a.page.screenshot({ path: join(artifacts, `${new URL(expectOrigin).port || "page"}-a.png`) });

    // B leaves: A sees B go offline.
    await b.context.close();
    b = undefined;
    await onlineIncludes(a, userB, false, "B offline after closing the page");
    step("presence: B offline after closing the page");

    const errors = a.errors;
    assert(errors.length === 0, `page errors: ${errors.join(" | ")}`);
    report.ok = true;
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));

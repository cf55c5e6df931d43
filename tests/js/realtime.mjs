// Drives confab with the official Socket.IO client, as the original web client does.
// Run by tests/realtime_js.rs, which starts confab and passes users and tokens in env.
// Exits non-zero with a message on the first failed expectation.
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { loadContract } from "./contract.mjs";

// Never hang the test suite: fail loudly instead.
setTimeout(() => { console.error("scenario exceeded 60 s"); process.exit(2); }, 60000).unref();

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`missing env ${k}`);
  return v;
};
const BASE = env("CONFAB_URL");
const [A, B, C] = ["A", "B", "C"].map((k) => ({ id: env(`USER_${k}`), token: env(`TOKEN_${k}`) }));
const TRANSPORTS = JSON.parse(env("TRANSPORTS"));
const EXPIRED = env("TOKEN_EXPIRED");
const QUIET_MS = 400;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, cond, timeout = 5000) {
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    const v = cond();
    if (v) return v;
    await sleep(15);
  }
  throw new Error(`timed out waiting for ${what}`);
}

// A client that records every event it receives.
function client(name, opts) {
  const socket = io(BASE, { transports: TRANSPORTS, reconnection: false, forceNew: true, ...opts });
  socket.events = [];
  socket.onAny((event, payload) => socket.events.push({ event, payload }));
  socket.named = name;
  return socket;
}
const got = (s, event) => s.events.filter((e) => e.event === event).map((e) => e.payload);
const lastOnline = (s) => got(s, "getOnlineUser").at(-1) ?? [];

function withTimeout(what, promise, ms = 5000) {
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

function connected(socket) {
  return withTimeout(`${socket.named} connecting`, new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", (e) => reject(new Error(`${socket.named}: connect_error ${e.message}`)));
  }));
}
function refused(socket) {
  return withTimeout(`${socket.named} being refused`, new Promise((resolve, reject) => {
    socket.once("connect", () => reject(new Error(`${socket.named} connected but should be refused`)));
    socket.once("connect_error", (e) => resolve(e.message));
  })).finally(() => socket.close());
}

async function api(method, path, token, body) {
  const res = await fetch(BASE + path, {
    signal: AbortSignal.timeout(5000),
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: await res.json() };
}

// What the server sends is checked against its AsyncAPI document at the end.
const contract = await loadContract(BASE);

const sameSet = (list, ids) => list.length === ids.length && ids.every((id) => list.includes(id));

// --- identity: a verified token from auth, header or cookie; nothing else ---
const a = client("A", { auth: { token: A.token } });
const b = client("B", { extraHeaders: { authorization: `Bearer ${B.token}` } });
await Promise.all([connected(a), connected(b)]);
assert.match(await refused(client("anon", {})), /Please Login/);
assert.match(await refused(client("expired", { auth: { token: EXPIRED } })), /JWT error/);
assert.match(await refused(client("forged", { auth: { token: A.token.slice(0, -4) + "AAAA" } })), /JWT error/);
assert.match(await refused(client("spoofed", { query: { userId: A.id } })), /Please Login/);

await until("A and B online, seen by both", () =>
  [a, b].every((s) => sameSet(lastOnline(s), [A.id, B.id])));
// The plural some clones listen to is off unless configured (it doubles every broadcast).
assert.equal(got(a, "getOnlineUsers").length, 0, "no getOnlineUsers by default");

// --- a chat between A and B ---
const opened = await api("POST", "/api/v1/chat/new", A.token, { userId: A.id, otherUserId: B.id });
assert.ok([200, 201].includes(opened.status), JSON.stringify(opened));
const chatId = opened.body.chatId;

// B opens the chat (with an ack, so we know it was processed), A too.
const bJoined = await b.timeout(5000).emitWithAck("joinChat", chatId);
assert.deepEqual(bJoined, { ok: true, message: "joined" });
contract.reply("joinChat", bJoined);
a.emit("joinChat", chatId); // the original client's way: bare string, no ack
await sleep(100);

// A sends while B has the chat open: seen at once, A told via messagesSeen.
const sent = await api("POST", "/api/v1/message", A.token, { chatId, text: "hello B" });
assert.equal(sent.status, 201, JSON.stringify(sent));
assert.equal(sent.body.sender, A.id);
const m1 = sent.body.message;
assert.equal(m1.seen, true);
assert.ok(m1.seenAt);
await until("B gets newMessage", () => got(b, "newMessage").some((m) => m._id === m1._id));
await until("A gets messagesSeen", () =>
  got(a, "messagesSeen").some((p) => p.chatId === chatId && p.seenBy === B.id && p.messageIds.includes(m1._id)));
await sleep(QUIET_MS);
for (const s of [a, b]) {
  assert.equal(got(s, "newMessage").filter((m) => m._id === m1._id).length, 1, `${s.named} gets newMessage once`);
}
const delivered = got(b, "newMessage").find((m) => m._id === m1._id);
assert.deepEqual(Object.keys(delivered).sort(),
  ["__v", "_id", "chatId", "createdAt", "messageType", "seen", "seenAt", "sender", "text", "updatedAt"]);

// Typing is relayed to the room except the sender, with the verified user id.
b.emit("typing", { chatId, userId: "spoofed" });
await until("A sees B typing", () => got(a, "userTyping").some((p) => p.chatId === chatId && p.userId === B.id));
b.emit("stopTyping", { chatId, userId: B.id });
await until("A sees B stop", () => got(a, "userStoppedTyping").some((p) => p.userId === B.id));
assert.equal(got(b, "userTyping").length, 0, "the typist does not hear itself");
assert.ok(got(a, "userTyping").every((p) => p.userId !== "spoofed"));

// B leaves the chat: the next message is unseen until B reads the history.
b.emit("leaveChat", chatId);
await sleep(100);
const m2 = (await api("POST", "/api/v1/message", A.token, { chatId, text: "are you there?" })).body.message;
assert.equal(m2.seen, false);
assert.equal(m2.seenAt, null);
await until("B still gets newMessage through its user room", () => got(b, "newMessage").some((m) => m._id === m2._id));
const list = await api("GET", "/api/v1/chat/all", B.token);
const entry = list.body.chats.find((c) => c.chat._id === chatId);
assert.equal(entry.chat.unseenCount, 1);
assert.equal(entry.chat.latestMessage.text, "are you there?");
assert.equal(entry.user._id, A.id);
const read = await api("GET", `/api/v1/message/${chatId}`, B.token);
assert.equal(read.status, 200);
assert.ok(read.body.messages.find((m) => m._id === m2._id).seen);
await until("A told B read m2", () =>
  got(a, "messagesSeen").some((p) => p.seenBy === B.id && p.messageIds.includes(m2._id)));

// --- a non-member cannot join, read, post, or overhear ---
// C's first tab asks for presence changes instead of whole lists.
const cd = client("C-delta", { auth: { token: C.token, presence: "delta" } });
await connected(cd);
const c = client("C", { extraHeaders: { cookie: `theme=dark; token=${C.token}` } });
await connected(c);
const joined = await c.timeout(5000).emitWithAck("joinChat", chatId);
contract.reply("joinChat", joined);
assert.equal(joined.ok, false);
assert.equal(joined.message, "You are not a participant of this chat");
c.emit("typing", { chatId, userId: C.id });
assert.equal((await api("GET", `/api/v1/message/${chatId}`, C.token)).status, 403);
assert.equal((await api("POST", "/api/v1/message", C.token, { chatId, text: "let me in" })).status, 403);
const m3 = (await api("POST", "/api/v1/message", B.token, { chatId, text: "private" })).body.message;
await until("A gets m3", () => got(a, "newMessage").some((m) => m._id === m3._id));
await sleep(QUIET_MS);
assert.equal(got(c, "newMessage").length, 0, "C overhears nothing");
assert.ok(got(a, "userTyping").every((p) => p.userId !== C.id), "C's typing is not relayed");

// --- a second tab: both tabs get each message once; closing one keeps A online ---
const a2 = client("A2", { auth: { token: A.token } });
await connected(a2);
const m4 = (await api("POST", "/api/v1/message", B.token, { chatId, text: "two tabs" })).body.message;
await until("both tabs get m4", () => [a, a2].every((s) => got(s, "newMessage").some((m) => m._id === m4._id)));
await sleep(QUIET_MS);
for (const s of [a, a2]) assert.equal(got(s, "newMessage").filter((m) => m._id === m4._id).length, 1);
await until("C sees A, B, C online", () => sameSet(lastOnline(c), [A.id, B.id, C.id]));
assert.equal(got(cd, "getOnlineUser").length, 1, "a delta client gets the whole list once");
assert.ok(sameSet(got(cd, "getOnlineUser")[0], [A.id, B.id, C.id]));
a2.disconnect();
c.disconnect();
await until("B sees A still online after one tab closed", () => sameSet(lastOnline(b), [A.id, B.id, C.id]));
a.disconnect();
await until("B sees A offline once the last tab closed", () => sameSet(lastOnline(b), [B.id, C.id]));
await until("the delta client is told A left", () => got(cd, "userOffline").some((ids) => ids.includes(A.id)));
assert.equal(got(cd, "getOnlineUser").length, 1, "and never sent the whole list again");
cd.disconnect();
b.disconnect();
let checked = 0;
for (const s of [a, b, c, a2, cd]) checked += contract.events(s);
assert.ok(checked > 10, `only ${checked} events checked against the AsyncAPI document`);
console.log(JSON.stringify({ ok: true, transports: TRANSPORTS, chatId, eventsChecked: checked }));
// Exit now rather than wait for any handle a closed client may keep open.
process.exit(0);

// One message through a deployed confab (the container image, the systemd unit), with the
// official Socket.IO client: B listens, A posts over HTTP, B must receive `newMessage`.
// Run by tests/deployed.rs with the URL, tokens and chat in env.
import { io } from "socket.io-client";

setTimeout(() => { console.error("scenario exceeded 30 s"); process.exit(2); }, 30000).unref();
const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`missing env ${k}`);
  return v;
};
const [BASE, TOKEN_A, TOKEN_B, CHAT] = ["CONFAB_URL", "TOKEN_A", "TOKEN_B", "CHAT"].map(env);
const text = `through the package ${Date.now()}`;

const b = io(BASE, { auth: { token: TOKEN_B }, reconnection: false, forceNew: true });
await new Promise((resolve, reject) => {
  b.once("connect", resolve);
  b.once("connect_error", (e) => reject(new Error(`connect_error ${e.message}`)));
});
const received = new Promise((resolve) => b.on("newMessage", (m) => m?.text === text && resolve(m)));
const sent = Date.now();
const res = await fetch(`${BASE}/api/v1/message`, {
  method: "POST",
  headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN_A}` },
  body: JSON.stringify({ chatId: CHAT, text }),
});
if (res.status !== 201) throw new Error(`POST /api/v1/message answered ${res.status}: ${await res.text()}`);
const message = await received;
b.close();
console.log(JSON.stringify({ ok: true, transport: b.io.engine?.transport?.name ?? "closed", ms: Date.now() - sent, id: message._id }));

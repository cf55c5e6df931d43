// The original chat service's Socket.IO layer (shared/spec/compat.md §5) on plain
// socket.io 4, nothing else: no HTTP API, JWT or store. Used by `bench/run.sh compare`
// as the reference confab is measured against.
//
//   PORT=5999 PRESENCE=1 node server.mjs
//
// PRESENCE=1 broadcasts the online list (`getOnlineUser`) to everyone on every connect
// and disconnect, as the original does; without it there is no presence at all.
// POST /emit {room, event, data} emits to a room, as the original's HTTP handlers do.
import { createServer } from "node:http";
import { Server } from "socket.io";

const port = Number(process.env.PORT || 5999);
const presence = process.env.PRESENCE === "1";

const http = createServer((req, res) => {
  if (req.method === "POST" && req.url === "/emit") {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      const { room, event, data } = JSON.parse(body);
      io.to(room).emit(event, data);
      res.writeHead(204).end();
    });
    return;
  }
  res.writeHead(404).end();
});
const io = new Server(http, { cors: { origin: "*" } });
const online = new Map();

io.on("connection", (socket) => {
  const userId = socket.handshake.query.userId;
  if (userId && userId !== "undefined") {
    online.set(userId, socket.id);
    socket.join(userId);
  }
  if (presence) io.emit("getOnlineUser", [...online.keys()]);
  socket.on("joinChat", (chatId, ack) => {
    socket.join(chatId);
    if (typeof ack === "function") ack({ ok: true, message: "joined" });
  });
  socket.on("leaveChat", (chatId) => socket.leave(chatId));
  socket.on("typing", ({ chatId, userId }) => socket.to(chatId).emit("userTyping", { chatId, userId }));
  socket.on("stopTyping", ({ chatId, userId }) => socket.to(chatId).emit("userStoppedTyping", { chatId, userId }));
  socket.on("disconnect", () => {
    if (userId) online.delete(userId);
    if (presence) io.emit("getOnlineUser", [...online.keys()]);
  });
});

http.listen(port, "127.0.0.1", () => console.log(`listening on ${port}`));

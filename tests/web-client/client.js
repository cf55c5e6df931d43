// Behaves like the original client's AppContext + chat page, without React. Everything
// the test observes is kept on `window.client`.
(() => {
  const { user_service, chat_service } = window.CONFAB_ORIGINS;
  const status = (text) => (document.getElementById("status").textContent = text);

  // js-cookie's Cookies.set("token", t, { expires: 15, secure: false, path: "/" }).
  function storeToken(token) {
    const expires = new Date(Date.now() + 15 * 864e5).toUTCString();
    document.cookie = `token=${encodeURIComponent(token)}; expires=${expires}; path=/`;
  }
  function readToken() {
    const pair = document.cookie.split("; ").find((c) => c.startsWith("token="));
    return pair ? decodeURIComponent(pair.slice("token=".length)) : undefined;
  }

  // axios with `headers: { Authorization: "Bearer " + Cookies.get("token") }`: no
  // credentials mode, so a cross-origin call carries the header and nothing else.
  async function call(base, path, options = {}) {
    const headers = { Authorization: `Bearer ${readToken()}`, ...(options.headers || {}) };
    const res = await fetch(`${base}${path}`, { ...options, headers });
    const body = await res.json();
    if (!res.ok) throw new Error(`${res.status} ${body.message}`);
    return body;
  }
  const json = (body) => ({ method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });

  const client = {
    events: [],
    online: [],
    user: null,
    socketState: "none",
    connectError: null,
    storeToken,
    // The calls the client makes on load: /me, chat/all, user/all in parallel.
    async load() {
      const [me, chats, users] = await Promise.all([
        call(user_service, "/api/v1/me"),
        call(chat_service, "/api/v1/chat/all"),
        call(user_service, "/api/v1/user/all"),
      ]);
      client.user = me;
      client.chats = chats.chats;
      client.users = users;
      client.connect();
      return me;
    },
    connect() {
      // Exactly the original's: the chat_service origin, only query.userId, default
      // transports (long-polling first, then the WebSocket upgrade), no withCredentials.
      const socket = io(chat_service, { query: { userId: client.user._id } });
      client.socket = socket;
      client.socketState = "connecting";
      socket.on("connect", () => (client.socketState = "connected"));
      socket.on("connect_error", (e) => {
        client.socketState = "refused";
        client.connectError = e.message;
      });
      socket.on("disconnect", () => (client.socketState = "disconnected"));
      socket.on("getOnlineUser", (users) => (client.online = users));
      for (const name of ["newMessage", "messagesSeen", "userTyping", "userStoppedTyping"]) {
        socket.on(name, (payload) => client.events.push({ name, payload, at: Date.now() }));
      }
    },
    transport: () => client.socket?.io?.engine?.transport?.name,
    async chatAll() {
      return (await call(chat_service, "/api/v1/chat/all")).chats;
    },
    async newChat(otherUserId) {
      return call(chat_service, "/api/v1/chat/new", json({ userId: client.user._id, otherUserId }));
    },
    // Selecting a chat: joinChat, then its messages (which marks them seen).
    async openChat(chatId) {
      client.socket.emit("joinChat", chatId);
      return call(chat_service, `/api/v1/message/${chatId}`);
    },
    closeChat(chatId) {
      client.socket.emit("leaveChat", chatId);
    },
    typing(chatId) {
      client.socket.emit("typing", { chatId, userId: client.user._id });
    },
    stopTyping(chatId) {
      client.socket.emit("stopTyping", { chatId, userId: client.user._id });
    },
    // The send form: multipart with chatId, text when not blank, image when picked.
    async send(chatId, text, withImage = false) {
      const form = new FormData();
      form.append("chatId", chatId);
      if (text.trim()) form.append("text", text);
      if (withImage) form.append("image", await client.drawnPng(), "drawn.png");
      return call(chat_service, "/api/v1/message", { method: "POST", body: form });
    },
    drawnPng() {
      const canvas = document.createElement("canvas");
      canvas.width = 64;
      canvas.height = 48;
      const g = canvas.getContext("2d");
      g.fillStyle = "#3366cc";
      g.fillRect(0, 0, 64, 48);
      g.fillStyle = "#ffcc00";
      g.fillRect(8, 8, 24, 16);
      return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    },
    // Loads an image the way an <img> would (no credentials, any origin).
    loadImage(url) {
      return new Promise((resolve) => {
        const img = new Image();
        img.onload = () => resolve({ ok: true, width: img.naturalWidth, height: img.naturalHeight });
        img.onerror = () => resolve({ ok: false });
        img.src = url;
      });
    },
  };
  window.client = client;

  // Like the app: when a token cookie is there, load the user and open the socket.
  window.addEventListener("DOMContentLoaded", () => {
    if (!readToken()) return status("logged out");
    client
      .load()
      .then((me) => status(`logged in as ${me.name}`))
      .catch((e) => status(`load failed: ${e.message}`));
  });
})();

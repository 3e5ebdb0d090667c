// Rotary demo chat: the official centrifuge-js browser build (global Centrifuge, loaded
// before this module) on a chat: channel with presence, join/leave, history and token
// refresh. Page parameters: ?user=NAME, ?room=ROOM (channel chat:ROOM), ?ttl=SECONDS
// (lifetime of each connection token; the SDK fetches a new one before it runs out).

const params = new URLSearchParams(location.search);
const NAME_KEY = "rotary-demo-name";
const room = params.get("room") || "demo";
const channel = `chat:${room}`;
const ttl = Number.parseInt(params.get("ttl") || "60", 10);
const websocketPath = document.querySelector('meta[name="rotary-websocket"]').content;
const $ = (id) => document.getElementById(id);

const seenOffsets = new Set();
const online = new Map(); // client id -> user
let tokensFetched = 0;
let client = null;
let me = params.get("user") || localStorage.getItem(NAME_KEY) || `guest-${Math.floor(Math.random() * 9000 + 1000)}`;

function websocketUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${websocketPath}`;
}

async function getToken() {
  const response = await fetch("/demo/token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user: me, ttl }),
  });
  if (!response.ok) throw new Error(`token endpoint: HTTP ${response.status}`);
  const body = await response.json();
  tokensFetched += 1;
  if (tokensFetched > 1) event(`token refreshed (valid ${body.ttl} s)`, "refresh");
  else event(`token issued for ${me} (valid ${body.ttl} s)`, "token");
  return body.token;
}

function event(text, kind) {
  const item = document.createElement("li");
  item.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  if (kind) item.dataset.kind = kind;
  $("events").prepend(item);
}

// A list item for a publication, or null when its offset was shown already.
function messageItem(user, text, offset) {
  if (offset !== undefined) {
    if (seenOffsets.has(offset)) return null;
    seenOffsets.add(offset);
  }
  const item = document.createElement("li");
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = user || "server";
  item.append(who, String(text));
  item.dataset.user = user || "";
  return item;
}

function showMessage(user, text, offset) {
  const item = messageItem(user, text, offset);
  if (!item) return;
  $("messages").append(item);
  $("messages").scrollTop = $("messages").scrollHeight;
}

function showSystem(text) {
  const item = document.createElement("li");
  item.className = "system";
  item.textContent = text;
  $("messages").append(item);
}

function renderOnline() {
  const users = [...new Set(online.values())].sort();
  $("online").replaceChildren(
    ...users.map((user) => Object.assign(document.createElement("li"), { textContent: user })),
  );
}

function publicationText(data) {
  return data && typeof data === "object" && "text" in data ? data.text : JSON.stringify(data);
}

async function loadHistory(sub) {
  // Earlier publications go above whatever arrived live meanwhile.
  const { publications } = await sub.history({ limit: 50, reverse: true });
  const items = publications
    .reverse()
    .map((pub) => messageItem(pub.info?.user, publicationText(pub.data), pub.offset))
    .filter(Boolean);
  $("messages").prepend(...items);
}

async function loadPresence(sub) {
  const { clients } = await sub.presence();
  online.clear();
  for (const [id, info] of Object.entries(clients)) online.set(id, info.user);
  renderOnline();
}

function subscribe() {
  const sub = client.newSubscription(channel, { joinLeave: true });
  sub.on("subscribed", async (ctx) => {
    event(ctx.wasRecovering ? `resubscribed (recovered: ${ctx.recovered})` : `subscribed to ${channel}`);
    try {
      await Promise.all([loadHistory(sub), loadPresence(sub)]);
    } catch (error) {
      event(`history or presence failed: ${error.message}`);
    }
  });
  sub.on("publication", (ctx) => showMessage(ctx.info?.user, publicationText(ctx.data), ctx.offset));
  sub.on("join", (ctx) => {
    online.set(ctx.info.client, ctx.info.user);
    renderOnline();
    showSystem(`${ctx.info.user} joined`);
  });
  sub.on("leave", (ctx) => {
    online.delete(ctx.info.client);
    renderOnline();
    showSystem(`${ctx.info.user} left`);
  });
  sub.on("error", (ctx) => event(`subscription error: ${ctx.error.message}`));
  sub.subscribe();
  return sub;
}

function connect() {
  $("me").textContent = me;
  $("name").value = me;
  client = new Centrifuge(websocketUrl(), { getToken });
  client.on("connected", () => {
    $("state").textContent = "connected";
    document.body.dataset.state = "connected";
  });
  client.on("connecting", (ctx) => {
    $("state").textContent = `connecting (${ctx.reason})`;
    document.body.dataset.state = "connecting";
  });
  client.on("disconnected", (ctx) => {
    $("state").textContent = `disconnected (${ctx.reason})`;
    document.body.dataset.state = "disconnected";
  });
  const sub = subscribe();
  client.connect();
  return sub;
}

let subscription = null;

$("send-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  try {
    await subscription.publish({ text });
    $("text").value = "";
  } catch (error) {
    event(`publish failed: ${error.message}`);
  }
});

$("name-form").addEventListener("submit", (e) => {
  e.preventDefault();
  me = $("name").value.trim();
  localStorage.setItem(NAME_KEY, me);
  tokensFetched = 0;
  online.clear();
  client.disconnect();
  subscription = connect();
});

$("room").textContent = channel;
if (typeof globalThis.Centrifuge === "function") {
  subscription = connect();
} else {
  $("state").textContent = "centrifuge-js is not installed: run `make run` (npm ci in web/)";
}

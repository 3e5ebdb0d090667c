// Drives the official centrifuge-js SDK for the Python tests in tests/functional/test_sdk_*.py.
//
// Protocol with the parent process (one JSON object per line):
//   stdin  (commands): {"op": "connect" | "subscribe" | "presence" | "history" | "unsubscribe" |
//                       "disconnect" | "token" | "exit", ...}; connect takes "protocol":
//                       "protobuf" to use the SDK's Protobuf build (centrifuge/build/protobuf).
//   stdout (events):   {"ev": "...", ...} — SDK events normalised to the same shape the Python
//                       SDK driver (tests/sdk/harness.py) produces, plus every raw WebSocket
//                       frame in both directions ({"ev": "frame", "dir": "in" | "out", "data"},
//                       or "binary" with the base64 of a Protobuf frame instead of "data").
//                       Protobuf payloads (Uint8Array) are reported as the JSON they hold, so
//                       events look the same in both protocols.
// Tokens are never made here: a getToken callback emits {"ev": "token_request", "seq": N, ...}
// and waits for {"op": "token", "seq": N, "token": "..."} from the parent, which signs it with
// the current time (pre-made short-lived tokens would drift relative to the SDK's refresh timer).
//
// The process bounds itself: it exits with status 3 after argv[2] milliseconds (default 30000),
// and with status 0 when stdin closes.
import readline from 'node:readline';

import { Centrifuge } from 'centrifuge';
import { Centrifuge as CentrifugeProtobuf } from 'centrifuge/build/protobuf';
import { EventSource } from 'eventsource';
import WebSocket from 'ws';

const hardTimeoutMs = Number(process.argv[2] || 30000);

function emit(event) {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

setTimeout(() => {
  emit({ ev: 'fatal', reason: `driver hard timeout after ${hardTimeoutMs} ms` });
  process.exit(3);
}, hardTimeoutMs);

// A ws WebSocket that reports every frame: the tests assert on what crossed the wire, and a
// failing test shows the exact frames the server sent.
function frameEvent(dir, data) {
  if (typeof data === 'string') {
    return { ev: 'frame', dir, data };
  }
  const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : data;
  return { ev: 'frame', dir, binary: Buffer.from(bytes).toString('base64') };
}

// A Protobuf payload as the JSON value it carries (or {"base64": …} when it is not JSON).
function plain(data) {
  if (!(data instanceof Uint8Array)) {
    return data;
  }
  const text = Buffer.from(data).toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    return { base64: Buffer.from(data).toString('base64') };
  }
}

// A uint64 of the Protobuf build may be a Long object.
function num(value) {
  return value === null || value === undefined ? value : Number(value);
}

class TappedWebSocket extends WebSocket {
  constructor(url, protocols, options) {
    super(url, protocols, options);
    // The extensions the server accepted (ws offers permessage-deflate by default).
    this.addEventListener('open', () => {
      emit({ ev: 'ws_open', extensions: this.extensions });
    });
    this.addEventListener('message', (e) => {
      emit(frameEvent('in', e.data));
    });
    this.addEventListener('close', (e) => {
      emit({ ev: 'ws_close', code: e.code, reason: String(e.reason) });
    });
  }

  send(data, ...rest) {
    emit(frameEvent('out', data));
    return super.send(data, ...rest);
  }
}

// The HTTP-streaming and SSE transports, tapped the same way: commands out (the first ones in
// the stream's request, later ones in emulation requests) and messages in, one frame each.

// The varint at `pos` of `bytes`: [value, position after it], or null when incomplete.
function readVarint(bytes, pos) {
  let value = 0;
  for (let shift = 0; pos < bytes.length && shift < 35; shift += 7) {
    const byte = bytes[pos++];
    value += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) {
      return [value, pos];
    }
  }
  return null;
}

// Field 3 (data) of a Protobuf EmulationRequest.
function emulationData(bytes) {
  let pos = 0;
  while (pos < bytes.length) {
    const [key, afterKey] = readVarint(bytes, pos);
    const [size, start] = readVarint(bytes, afterKey);
    if (key >> 3 === 3) {
      return bytes.subarray(start, start + size);
    }
    pos = start + size;
  }
  return new Uint8Array();
}

// Reads a copy of a streamed body, emitting each whole message (a JSON line, or a
// length-prefixed Protobuf message) as one frame in.
async function tapBody(body, binary) {
  const reader = body.getReader();
  let pending = binary ? new Uint8Array() : '';
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      return;
    }
    if (!binary) {
      pending += decoder.decode(value, { stream: true });
      const lines = pending.split('\n');
      pending = lines.pop();
      lines.filter((line) => line).forEach((line) => emit(frameEvent('in', line)));
      continue;
    }
    const merged = new Uint8Array(pending.length + value.length);
    merged.set(pending);
    merged.set(value, pending.length);
    pending = merged;
    for (;;) {
      const head = readVarint(pending, 0);
      if (head === null || head[1] + head[0] > pending.length) {
        break;
      }
      emit(frameEvent('in', pending.subarray(0, head[1] + head[0])));
      pending = pending.subarray(head[1] + head[0]);
    }
  }
}

async function tappedFetch(url, options) {
  const binary = typeof options.body !== 'string';
  if (String(url).endsWith('/emulation')) {
    const data = binary ? emulationData(options.body) : JSON.parse(options.body).data;
    emit(frameEvent('out', data));
    return fetch(url, options);
  }
  emit(frameEvent('out', options.body));
  const response = await fetch(url, options);
  if (!response.ok || !response.body) {
    return response;
  }
  const [forSdk, forTap] = response.body.tee();
  tapBody(forTap, binary).catch(() => {});
  return new Response(forSdk, { status: response.status, headers: response.headers });
}

class TappedEventSource extends EventSource {
  constructor(url, init) {
    super(url, init);
    emit(frameEvent('out', new URL(url).searchParams.get('cf_connect')));
    this.addEventListener('message', (e) => emit(frameEvent('in', e.data)));
  }
}

let tokenSeq = 0;
const pendingTokens = new Map();

function askToken(kind, channel) {
  tokenSeq += 1;
  const seq = tokenSeq;
  emit({ ev: 'token_request', kind, channel: channel || '', seq });
  return new Promise((resolve, reject) => {
    pendingTokens.set(seq, { resolve, reject });
  });
}

function answerToken(cmd) {
  const waiter = pendingTokens.get(cmd.seq);
  if (!waiter) {
    emit({ ev: 'driver_error', message: `no token request ${cmd.seq}` });
    return;
  }
  pendingTokens.delete(cmd.seq);
  if (cmd.error) {
    waiter.reject(new Error(cmd.error));
  } else {
    waiter.resolve(cmd.token);
  }
}

function errorFields(error) {
  if (!error) {
    return { code: 0, message: '' };
  }
  return { code: Number(error.code || 0), message: String(error.message || error) };
}

function clientInfo(info) {
  return {
    client: info.client,
    user: info.user,
    conn_info: plain(info.connInfo) ?? null,
    chan_info: plain(info.chanInfo) ?? null,
  };
}

let client = null;
const subs = new Map();
// Cookie sent with the WebSocket upgrade and to token endpoints (the app's session), as a
// browser would: tests of the backend endpoints and of the proxy set it with `cookie`.
let cookie = '';

class CookieWebSocket extends TappedWebSocket {
  constructor(url, protocols) {
    super(url, protocols, cookie ? { headers: { cookie } } : {});
  }
}

// A getToken that POSTs to the app's token endpoint, as the SDK examples do.
async function fetchToken(endpoint, body) {
  const response = await fetch(endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) },
    body: JSON.stringify(body),
  });
  emit({ ev: 'token_fetch', endpoint, status: response.status });
  if (!response.ok) {
    throw new Error(`token endpoint answered ${response.status}`);
  }
  return (await response.json()).token;
}

function connect(cmd) {
  cookie = cmd.cookie || '';
  // Node 20 has fetch and ReadableStream (HTTP-streaming) but no EventSource (SSE).
  const options = {
    websocket: CookieWebSocket,
    eventsource: TappedEventSource,
    fetch: tappedFetch,
    debug: false,
    ...(cmd.options || {}),
  };
  if (cmd.token) {
    options.token = cmd.token;
  }
  if (cmd.use_get_token) {
    options.getToken = () => askToken('connection', '');
  }
  if (cmd.token_endpoint) {
    options.getToken = () => fetchToken(cmd.token_endpoint, {});
  }
  const Client = cmd.protocol === 'protobuf' ? CentrifugeProtobuf : Centrifuge;
  // `transports` (a list of {transport, endpoint}) tries each in turn, as a browser app would.
  client = new Client(cmd.transports || cmd.url, options);
  client.on('connecting', (ctx) => emit({ ev: 'connecting', code: ctx.code, reason: ctx.reason }));
  client.on('connected', (ctx) =>
    emit({ ev: 'connected', client: ctx.client, transport: ctx.transport }),
  );
  client.on('disconnected', (ctx) =>
    emit({ ev: 'disconnected', code: ctx.code, reason: ctx.reason }),
  );
  client.on('error', (ctx) => emit({ ev: 'error', type: ctx.type, ...errorFields(ctx.error) }));
  client.connect();
}

function subscribe(cmd) {
  const options = { ...(cmd.options || {}) };
  if (cmd.token) {
    options.token = cmd.token;
  }
  if (cmd.use_get_token) {
    options.getToken = (ctx) => askToken('subscription', ctx.channel);
  }
  if (cmd.token_endpoint) {
    options.getToken = (ctx) => fetchToken(cmd.token_endpoint, { channel: ctx.channel });
  }
  const sub = client.newSubscription(cmd.channel, options);
  const channel = cmd.channel;
  sub.on('subscribing', (ctx) =>
    emit({ ev: 'sub_subscribing', channel, code: ctx.code, reason: ctx.reason }),
  );
  sub.on('subscribed', (ctx) =>
    emit({
      ev: 'sub_subscribed',
      channel,
      recoverable: Boolean(ctx.recoverable),
      positioned: Boolean(ctx.positioned),
      was_recovering: Boolean(ctx.wasRecovering),
      recovered: Boolean(ctx.recovered),
      offset: ctx.streamPosition ? num(ctx.streamPosition.offset) : null,
      epoch: ctx.streamPosition ? ctx.streamPosition.epoch : null,
    }),
  );
  sub.on('unsubscribed', (ctx) =>
    emit({ ev: 'sub_unsubscribed', channel, code: ctx.code, reason: ctx.reason }),
  );
  sub.on('publication', (ctx) =>
    emit({ ev: 'publication', channel, data: plain(ctx.data), offset: num(ctx.offset ?? 0) }),
  );
  sub.on('error', (ctx) =>
    emit({ ev: 'sub_error', channel, type: ctx.type, ...errorFields(ctx.error) }),
  );
  subs.set(channel, sub);
  sub.subscribe();
}

async function reply(cmd, call) {
  try {
    const result = await call();
    emit({ ev: 'reply', req: cmd.req, result });
  } catch (e) {
    emit({ ev: 'reply', req: cmd.req, error: errorFields(e) });
  }
}

async function presence(cmd) {
  await reply(cmd, async () => {
    const result = await subs.get(cmd.channel).presence();
    const clients = {};
    for (const [id, info] of Object.entries(result.clients)) {
      clients[id] = clientInfo(info);
    }
    return { clients };
  });
}

async function history(cmd) {
  await reply(cmd, async () => {
    const result = await subs.get(cmd.channel).history(cmd.options || {});
    return {
      offset: num(result.offset),
      epoch: result.epoch,
      publications: result.publications.map((p) => ({
        data: plain(p.data),
        offset: num(p.offset ?? 0),
      })),
    };
  });
}

async function publish(cmd) {
  await reply(cmd, async () => {
    await subs.get(cmd.channel).publish(cmd.data);
    return {};
  });
}

async function rpc(cmd) {
  await reply(cmd, async () => (await client.rpc(cmd.method, cmd.data)).data);
}

function unsubscribe(cmd) {
  subs.get(cmd.channel).unsubscribe();
}

const handlers = {
  connect,
  subscribe,
  presence,
  history,
  publish,
  rpc,
  unsubscribe,
  token: answerToken,
  disconnect: () => client && client.disconnect(),
  exit: () => {
    if (client) {
      client.disconnect();
    }
    process.exit(0);
  },
};

const input = readline.createInterface({ input: process.stdin });
input.on('line', (line) => {
  if (!line.trim()) {
    return;
  }
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    emit({ ev: 'driver_error', message: `bad command line: ${e}` });
    return;
  }
  const handler = handlers[cmd.op];
  if (!handler) {
    emit({ ev: 'driver_error', message: `unknown op ${cmd.op}` });
    return;
  }
  try {
    const maybe = handler(cmd);
    if (maybe && typeof maybe.catch === 'function') {
      maybe.catch((e) => emit({ ev: 'driver_error', message: String(e && e.stack) }));
    }
  } catch (e) {
    emit({ ev: 'driver_error', message: String(e && e.stack) });
  }
});
input.on('close', () => process.exit(0));
emit({ ev: 'ready', sdk: 'centrifuge-js' });

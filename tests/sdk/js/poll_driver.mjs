// Drives one centrifuge-js shared poll subscription for tests/functional/test_sdk_shared_poll.py.
//
// argv: url, connection token, channel, protocol ("json" or "protobuf"), the shared poll
// HMAC secret, the user id the signatures are made for (the SDK's getSignature is
// answered here, as an app backend would answer it) and optionally a delta type ("fossil";
// each update then tells how many deltas the SDK applied so far). stdout: one JSON event per line
// ({"ev": "subscribed" | "update" | "error" | "unsubscribed" | "tracked", ...}).
// stdin: {"op": "track", "keys": [...]} (signed here), {"op": "track_keys", "keys": [...]}
// (signed through the SDK's getSignature) or {"op": "untrack", "keys": [...]}; the tracks
// answer {"ev": "tracked"}.
// The process exits with status 0 when stdin closes and 3 after 20 s whatever happens.
import crypto from 'node:crypto';
import readline from 'node:readline';

import { Centrifuge } from 'centrifuge';
import { Centrifuge as CentrifugeProtobuf } from 'centrifuge/build/protobuf';
import WebSocket from 'ws';

const [url, token, channel, protocol, secret, user, delta] = process.argv.slice(2);

function emit(event) {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

setTimeout(() => {
  emit({ ev: 'fatal', reason: 'poll driver hard timeout' });
  process.exit(3);
}, 20000);

function sign(keys) {
  const now = Math.floor(Date.now() / 1000);
  const keysHash = crypto.createHash('sha256').update(keys.join('\x00')).digest('hex');
  const payload = `${now}\x00${now + 3600}\x00${user}\x00${channel}\x00${keysHash}`;
  const mac = crypto.createHmac('sha256', secret).update(payload).digest('hex');
  return `${now}:${now + 3600}:${mac}`;
}

const Client = protocol === 'protobuf' ? CentrifugeProtobuf : Centrifuge;
const client = new Client(url, { token, websocket: WebSocket });
const sub = client.newSharedPollSubscription(channel, {
  getSignature: async (ctx) => ({ keys: ctx.keys, signature: sign(ctx.keys) }),
  ...(delta ? { delta } : {}),
});
sub.on('subscribed', () => emit({ ev: 'subscribed' }));
// A Protobuf client gets the payload as bytes: the JSON the backend returned.
const plain = (data) =>
  data instanceof Uint8Array ? JSON.parse(new TextDecoder().decode(data)) : data;
sub.on('update', (ctx) =>
  emit({
    ev: 'update',
    key: ctx.key,
    data: ctx.removed ? null : plain(ctx.data),
    version: ctx.version,
    removed: Boolean(ctx.removed),
    // The SDK's own count of the publications it decoded as deltas (not public API).
    ...(delta ? { deltas: sub._deltaNumDelta } : {}),
  }),
);
sub.on('error', (ctx) => emit({ ev: 'error', type: ctx.type, error: ctx.error }));
sub.on('unsubscribed', (ctx) => emit({ ev: 'unsubscribed', code: ctx.code, reason: ctx.reason }));
sub.subscribe();
client.connect();

const lines = readline.createInterface({ input: process.stdin });
lines.on('line', async (line) => {
  const cmd = JSON.parse(line);
  if (cmd.op === 'untrack') {
    await sub.untrack(cmd.keys);
    return;
  }
  if (cmd.op === 'track_keys') {
    // String keys: the SDK signs them through getSignature.
    await sub.track(cmd.keys);
  } else {
    const items = cmd.keys.map((key) => ({ key, version: 0 }));
    await sub.track(items, sign(cmd.keys));
  }
  emit({ ev: 'tracked' });
});
lines.on('close', () => process.exit(0));

// Drives one centrifuge-js map subscription for tests/functional/test_sdk_maps.py.
//
// argv: url, connection token, channel, page size, kind ("map", the default, "clients" or
// "users": the presence maps), protocol ("json", the default, or "protobuf": the SDK's
// Protobuf build), delta ("fossil" to ask for fossil delta, or nothing). stdout: one JSON
// event per line ({"ev": "sync" | "update" | "subscribed" | "error" | "unsubscribed" |
// "frame" | "stats", ...}); data the Protobuf build hands over as bytes is shown as the
// JSON it holds. stdin: {"op": "publish", "key", "data"} or {"op": "remove", "key"} through
// the subscription, each answered {"ev": "written"} or {"ev": "write_error", "error"};
// {"op": "stats"} answers the subscription's deltaStats() as {"ev": "stats", ...}.
// The process exits with status 0 when stdin closes and 3 after 20 s whatever happens.
import readline from 'node:readline';

import { Centrifuge } from 'centrifuge';
import { Centrifuge as CentrifugeProtobuf } from 'centrifuge/build/protobuf';
import WebSocket from 'ws';

const [url, token, channel, pageSize, kind, protocol, delta] = process.argv.slice(2);
const protobuf = protocol === 'protobuf';

function emit(event) {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

setTimeout(() => {
  emit({ ev: 'fatal', reason: 'map driver hard timeout' });
  process.exit(3);
}, 20000);

class TappedWebSocket extends WebSocket {
  constructor(address, protocols) {
    super(address, protocols);
    if (!protobuf) {
      this.addEventListener('message', (e) => emit({ ev: 'frame', dir: 'in', data: String(e.data) }));
    }
  }

  send(data, ...rest) {
    if (!protobuf) {
      emit({ ev: 'frame', dir: 'out', data: String(data) });
    }
    return super.send(data, ...rest);
  }
}

const Client = protobuf ? CentrifugeProtobuf : Centrifuge;
const client = new Client(url, { token, websocket: TappedWebSocket });
const options = { pageSize: Number(pageSize || 0) };
if (delta) {
  options.delta = delta;
}
const sub =
  kind === 'clients'
    ? client.newMapClientsSubscription(channel, options)
    : kind === 'users'
      ? client.newMapUsersSubscription(channel, options)
      : client.newMapSubscription(channel, options);
const shown = (data) =>
  data instanceof Uint8Array && data.length ? JSON.parse(new TextDecoder().decode(data)) : data;
const entry = (e) => ({ key: e.key, data: shown(e.data), removed: Boolean(e.removed) });
sub.on('subscribed', () => emit({ ev: 'subscribed' }));
sub.on('sync', (ctx) => emit({ ev: 'sync', entries: ctx.entries.map(entry) }));
sub.on('update', (ctx) => emit({ ev: 'update', ...entry(ctx) }));
sub.on('error', (ctx) => emit({ ev: 'error', error: ctx.error }));
sub.on('unsubscribed', (ctx) => emit({ ev: 'unsubscribed', code: ctx.code, reason: ctx.reason }));
sub.subscribe();
client.connect();

const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const cmd = JSON.parse(line);
  if (cmd.op === 'stats') {
    emit({ ev: 'stats', ...sub.deltaStats() });
    return;
  }
  const done = cmd.op === 'remove' ? sub.remove(cmd.key) : sub.publish(cmd.key, cmd.data);
  done.then(
    () => emit({ ev: 'written' }),
    (e) => emit({ ev: 'write_error', error: e }),
  );
});
lines.on('close', () => process.exit(0));

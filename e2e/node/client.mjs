// A client for ssekit's end-to-end tests (e2e/node_test.go), built on the
// npm package eventsource, which follows the WHATWG EventSource API.
//
//   node client.mjs URL COUNT [LAST_EVENT_ID]
//
// It connects to URL and prints one JSON line per event to stdout:
// {"type", "data", "lastEventId"}. It listens for "message" events and for
// ssekit's reset event ("sse-reset"). After COUNT events it closes the
// EventSource and exits 0. With LAST_EVENT_ID, the first request carries it
// as Last-Event-ID (the package has no option for that; a fetch wrapper adds
// the header, as its README shows); later requests carry what the package
// itself tracks. Reconnections are the package's own. Connection errors
// (each is followed by a reconnection unless the package gives up) are
// reported on stderr. It exits 1 when COUNT events have not arrived within
// SSE_CLIENT_TIMEOUT_MS milliseconds (default 20000), and 2 on bad usage.
import { EventSource } from 'eventsource';

const [url, countArg, initialLastEventId] = process.argv.slice(2);
const count = Number.parseInt(countArg ?? '', 10);
if (!url || !Number.isInteger(count) || count < 0) {
  process.stderr.write('usage: node client.mjs URL COUNT [LAST_EVENT_ID]\n');
  process.exit(2);
}
const timeoutMs = Number.parseInt(process.env.SSE_CLIENT_TIMEOUT_MS ?? '20000', 10);

let requests = 0;
const es = new EventSource(url, {
  fetch: (input, init) => {
    requests++;
    const headers = { ...(init?.headers ?? {}) };
    if (requests === 1 && initialLastEventId) {
      headers['Last-Event-ID'] = initialLastEventId;
    }
    return fetch(input, { ...init, headers });
  },
});

let received = 0;
const timer = setTimeout(() => {
  process.stderr.write(`client.mjs: timed out after ${timeoutMs} ms with ${received} of ${count} events\n`);
  es.close();
  process.exit(1);
}, timeoutMs);

function finish() {
  clearTimeout(timer);
  es.close();
  // Exit once stdout has taken everything written to it.
  process.stdout.write('', () => process.exit(0));
}

function onEvent(ev) {
  if (received >= count) {
    return;
  }
  received++;
  process.stdout.write(JSON.stringify({ type: ev.type, data: ev.data, lastEventId: ev.lastEventId }) + '\n');
  if (received === count) {
    finish();
  }
}

es.addEventListener('message', onEvent);
es.addEventListener('sse-reset', onEvent);
es.addEventListener('open', () => {
  process.stderr.write(`client.mjs: open (request ${requests})\n`);
});
es.addEventListener('error', (ev) => {
  const state = es.readyState === EventSource.CLOSED ? 'closed for good' : 'reconnecting';
  process.stderr.write(`client.mjs: error (${state}): ${ev.message ?? ''}${ev.code ? ` code ${ev.code}` : ''}\n`);
});

if (count === 0) {
  finish();
}

// Interop: the npm `redis` client (node-redis v4) and `ioredis` against
// colony broker's RESP port: connect (with their handshakes: CLIENT SETINFO,
// INFO ready check, CLIENT SETNAME, AUTH), PING, ECHO, and pub/sub with
// channel and pattern subscriptions and PUBLISH's receiver counts.
// Usage: node interop.js PORT AUTH_PORT (AUTH_PORT's password: sekret)
'use strict';
const assert = require('assert');
const { createClient } = require('redis');
const Redis = require('ioredis');

const port = Number(process.argv[2]);
const authPort = Number(process.argv[3]);

function waitFor(pred, what) {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const tick = () => {
      if (pred()) return resolve();
      if (Date.now() - start > 5000) return reject(new Error('timed out waiting for ' + what));
      setTimeout(tick, 10);
    };
    tick();
  });
}

async function nodeRedis() {
  const client = createClient({ url: `redis://127.0.0.1:${port}`, name: 'node-redis-main' });
  client.on('error', (e) => { throw e; });
  await client.connect();
  assert.strictEqual(await client.ping(), 'PONG');
  assert.strictEqual(await client.echo('hello'), 'hello');
  assert.strictEqual(await client.sendCommand(['CLIENT', 'GETNAME']), 'node-redis-main');
  const sub = client.duplicate();
  await sub.connect();
  const got = [];
  await sub.subscribe('orders', (msg, ch) => got.push(['message', ch, msg]));
  await sub.pSubscribe('ord*', (msg, ch) => got.push(['pmessage', ch, msg]));
  assert.strictEqual(await client.publish('orders', '{"id":1}'), 2);
  assert.strictEqual(await client.publish('ordinal', 'x'), 1);
  assert.strictEqual(await client.publish('nobody', 'x'), 0);
  await waitFor(() => got.length === 3, 'node-redis deliveries');
  got.sort();
  assert.deepStrictEqual(got, [
    ['message', 'orders', '{"id":1}'],
    ['pmessage', 'orders', '{"id":1}'],
    ['pmessage', 'ordinal', 'x'],
  ]);
  assert.strictEqual((await client.pubSubNumSub('orders')).orders, 1);
  await sub.unsubscribe('orders');
  await sub.pUnsubscribe('ord*');
  assert.strictEqual(await client.publish('orders', 'y'), 0);
  await sub.quit();
  await client.quit();
  console.log('node-redis v4: connect, ping, echo, setname, pub/sub: ok');
}

async function ioredis() {
  const client = new Redis({ port, host: '127.0.0.1', connectionName: 'ioredis-main',
                             maxRetriesPerRequest: 1, enableReadyCheck: true });
  assert.strictEqual(await client.ping(), 'PONG');
  assert.strictEqual(await client.client('GETNAME'), 'ioredis-main');
  const sub = new Redis({ port, host: '127.0.0.1' });
  const got = [];
  sub.on('message', (ch, msg) => got.push(['message', ch, msg]));
  sub.on('pmessage', (pat, ch, msg) => got.push(['pmessage', pat, ch, msg]));
  assert.strictEqual(await sub.subscribe('news', 'sport'), 2);
  assert.strictEqual(await sub.psubscribe('n?ws'), 3);
  assert.strictEqual(await client.publish('news', 'hi'), 2);
  assert.strictEqual(await client.publish('sport', 'goal'), 1);
  await waitFor(() => got.length === 3, 'ioredis deliveries');
  got.sort();
  assert.deepStrictEqual(got, [
    ['message', 'news', 'hi'],
    ['message', 'sport', 'goal'],
    ['pmessage', 'n?ws', 'news', 'hi'],
  ]);
  sub.disconnect();
  const authed = new Redis({ port: authPort, host: '127.0.0.1', password: 'sekret' });
  assert.strictEqual(await authed.ping(), 'PONG');
  authed.disconnect();
  const wrong = new Redis({ port: authPort, host: '127.0.0.1', password: 'nope',
                            maxRetriesPerRequest: 0, retryStrategy: () => null,
                            lazyConnect: true });
  const errors = [];
  wrong.on('error', (e) => errors.push(e.message));
  await assert.rejects(wrong.connect());
  await waitFor(() => errors.some((m) => /^WRONGPASS/.test(m)), 'WRONGPASS from ioredis');
  wrong.disconnect();
  client.disconnect();
  console.log('ioredis: connect, ready check, setname, pub/sub, auth: ok');
}

(async () => {
  await nodeRedis();
  await ioredis();
})().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });

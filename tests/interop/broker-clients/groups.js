// Interop: consumer groups through the npm `redis` client (node-redis v4)
// and `ioredis`: create, read new entries and history, a blocked read woken
// by another client's XADD, ack, pending (both forms), claim, autoclaim,
// info. Every result is printed as one JSON line, so the same script run
// against redis-server and against colony broker can be compared line by
// line (tests/interop/test_broker_clients.sh); idle times are left out.
// Usage: node groups.js PORT
'use strict';
const assert = require('assert');
const { createClient, commandOptions } = require('redis');
const Redis = require('ioredis');

const port = Number(process.argv[2]);
const out = (what, v) => console.log(JSON.stringify([what, v]));

async function nodeRedis() {
  const c = createClient({ url: `redis://127.0.0.1:${port}` });
  c.on('error', (e) => { throw e; });
  await c.connect();
  await c.del('nr:jobs');
  out('nr create', await c.xGroupCreate('nr:jobs', 'workers', '$', { MKSTREAM: true }));
  for (let i = 1; i <= 4; i++) await c.xAdd('nr:jobs', `${i}-1`, { job: `j${i}` });
  out('nr read w1', await c.xReadGroup('workers', 'w1', { key: 'nr:jobs', id: '>' }, { COUNT: 2 }));
  out('nr read w2', await c.xReadGroup('workers', 'w2', { key: 'nr:jobs', id: '>' }));
  out('nr history w1', await c.xReadGroup('workers', 'w1', { key: 'nr:jobs', id: '0' }));
  // a blocked read, woken by another connection's XADD
  const blocked = c.xReadGroup(commandOptions({ isolated: true }), 'workers', 'w3',
                               { key: 'nr:jobs', id: '>' }, { BLOCK: 5000 });
  await new Promise((r) => setTimeout(r, 200));
  const w = c.duplicate();
  await w.connect();
  await w.xAdd('nr:jobs', '5-1', { job: 'j5' });
  await w.quit();
  out('nr blocked w3', await blocked);
  out('nr ack', await c.xAck('nr:jobs', 'workers', ['1-1', '2-1', '9-9']));
  out('nr pending', await c.xPending('nr:jobs', 'workers'));
  const range = await c.xPendingRange('nr:jobs', 'workers', '-', '+', 10);
  out('nr pending range', range.map((p) => [p.id, p.owner, p.deliveriesCounter]));
  const claimed = await c.xAutoClaim('nr:jobs', 'workers', 'w9', 0, '0-0', { COUNT: 2 });
  out('nr autoclaim', claimed);
  out('nr claim', await c.xClaimJustId('nr:jobs', 'workers', 'w1', 0, ['5-1']));
  const groups = await c.xInfoGroups('nr:jobs');
  out('nr groups', groups);
  const consumers = await c.xInfoConsumers('nr:jobs', 'workers');
  out('nr consumers', consumers.map((x) => [x.name, x.pending]));
  await c.del('nr:jobs');
  await c.quit();
}

async function ioredis() {
  const c = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
  await c.del('io:jobs');
  out('io create', await c.xgroup('CREATE', 'io:jobs', 'workers', '$', 'MKSTREAM'));
  for (let i = 1; i <= 4; i++) await c.xadd('io:jobs', `${i}-1`, 'job', `j${i}`);
  out('io read', await c.xreadgroup('GROUP', 'workers', 'a', 'COUNT', 3, 'STREAMS', 'io:jobs', '>'));
  out('io read noack', await c.xreadgroup('GROUP', 'workers', 'b', 'NOACK', 'STREAMS', 'io:jobs', '>'));
  const b = new Redis({ port, host: '127.0.0.1' });
  const blocked = b.xreadgroup('GROUP', 'workers', 'c', 'BLOCK', 5000, 'STREAMS', 'io:jobs', '>');
  await new Promise((r) => setTimeout(r, 200));
  await c.xadd('io:jobs', '5-1', 'job', 'j5');
  out('io blocked', await blocked);
  b.disconnect();
  out('io ack', await c.xack('io:jobs', 'workers', '1-1'));
  out('io pending', await c.xpending('io:jobs', 'workers'));
  const range = await c.xpending('io:jobs', 'workers', '-', '+', 10);
  out('io pending range', range.map((p) => [p[0], p[1], p[3]]));
  out('io claim', await c.xclaim('io:jobs', 'workers', 'z', 0, '2-1', '3-1'));
  out('io autoclaim', await c.xautoclaim('io:jobs', 'workers', 'y', 0, '0', 'COUNT', 10, 'JUSTID'));
  out('io groups', await c.xinfo('GROUPS', 'io:jobs'));
  const info = await c.xinfo('STREAM', 'io:jobs');
  const keep = {};
  for (let i = 0; i < info.length; i += 2)
    if (!/^radix/.test(info[i])) keep[info[i]] = info[i + 1];
  out('io stream', keep);
  await assert.rejects(c.xreadgroup('GROUP', 'nogroup', 'a', 'STREAMS', 'io:jobs', '>'),
                       /^ReplyError: NOGROUP/);
  out('io destroy', await c.xgroup('DESTROY', 'io:jobs', 'workers'));
  await c.del('io:jobs');
  c.disconnect();
}

(async () => {
  await nodeRedis();
  await ioredis();
})().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });

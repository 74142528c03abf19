// Wake-up latency: how long after a change a parked watcher gets its answer.
// usage: node wake.js colony <port> <n> | node wake.js etcd <port> <n>
// Colony: a blocking GET /v1/kv/wake/key?index=N&wait=30s is parked, then a PUT
// changes the key. etcd: a streaming POST /v3/watch on the key, then a put.
// For each change: sent_to_wake = PUT sent -> watcher answered; ack_to_wake =
// PUT acknowledged -> watcher answered (negative when the watcher was first).
// Prints one JSON line.
"use strict";
const http = require("node:http");
const [system, portText, nText] = process.argv.slice(2);
const port = Number(portText);
const n = Number(nText || 200);
const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
const now = () => Number(process.hrtime.bigint()) / 1e6;
const b64 = (s) => Buffer.from(s).toString("base64");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function request(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path, agent }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
function summary(values) {
  const s = [...values].sort((a, b) => a - b);
  const r3 = (v) => Math.round(v * 1000) / 1000;
  return { p50: r3(pct(s, 50)), p90: r3(pct(s, 90)), p99: r3(pct(s, 99)), max: r3(s[s.length - 1]) };
}

async function colony() {
  const put0 = await request("PUT", "/v1/kv/wake/key", "0");
  if (put0.status !== 200) throw new Error("PUT failed " + put0.status);
  let index = Number((await request("GET", "/v1/kv/wake/key")).headers["x-consul-index"]);
  const sent = [], acked = [];
  for (let i = 1; i <= n; i++) {
    let woke;
    const watch = request("GET", `/v1/kv/wake/key?index=${index}&wait=30s`).then((res) => {
      woke = now();
      return res;
    });
    await sleep(5); // let the query park on the server
    const t0 = now();
    await request("PUT", "/v1/kv/wake/key", String(i));
    const tAck = now();
    const res = await watch;
    if (res.status !== 200) throw new Error("watch answered " + res.status);
    const next = Number(res.headers["x-consul-index"]);
    if (!(next > index)) throw new Error(`index did not advance: ${index} -> ${next}`);
    index = next;
    sent.push(woke - t0);
    acked.push(woke - tAck);
  }
  return { sent, acked };
}

async function etcd() {
  const key = b64("wake/key");
  let pending = null;
  const watchReq = http.request({ host: "127.0.0.1", port, method: "POST", path: "/v3/watch" }, (res) => {
    let buf = "";
    res.on("data", (c) => {
      buf += c.toString();
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const msg = JSON.parse(line);
        if (msg.result && msg.result.events && pending) {
          const p = pending;
          pending = null;
          p(now());
        }
      }
    });
  });
  watchReq.end(JSON.stringify({ create_request: { key } }));
  await sleep(200); // watch created
  const sent = [], acked = [];
  for (let i = 1; i <= n; i++) {
    const woke = new Promise((r) => (pending = r));
    await sleep(5);
    const t0 = now();
    const put = await request("POST", "/v3/kv/put", JSON.stringify({ key, value: b64(String(i)) }));
    if (put.status !== 200) throw new Error("put failed " + put.status);
    const tAck = now();
    const tWake = await woke;
    sent.push(tWake - t0);
    acked.push(tWake - tAck);
  }
  watchReq.destroy();
  return { sent, acked };
}

(system === "etcd" ? etcd() : colony())
  .then(({ sent, acked }) => {
    console.log(JSON.stringify({ system, changes: n, sent_to_wake_ms: summary(sent), ack_to_wake_ms: summary(acked) }));
    process.exit(0);
  })
  .catch((err) => {
    console.error("wake:", err.message);
    process.exit(1);
  });

// bench/supervisor's Node.js app: GET anything -> {"message":"hello"}.
// Under PM2 (cluster mode) it listens on PORT, shared by the workers through
// Node's cluster module. Under `colony up` it has no fixed port: it listens on
// an ephemeral one and registers with the registry (COLONY_REGISTRY_URL) as
// COLONY_SERVICE_ID, which the supervisor gives each process; the gateway
// finds it there. On SIGINT/SIGTERM it deregisters (if registered), waits for
// the gateway to notice, stops accepting, finishes in-flight requests, exits.
"use strict";
const http = require("http");

const registry = process.env.COLONY_REGISTRY_URL || "";
const id = process.env.COLONY_SERVICE_ID || `benchapp-${process.pid}`;
const name = process.env.SERVICE_NAME || "benchapp";
const body = '{"message":"hello"}';
const server = http.createServer((req, res) => {
  res.writeHead(200, { "content-type": "application/json", "content-length": body.length });
  res.end(body);
});

function registryCall(method, path, payload) {
  return new Promise((resolve) => {
    const req = http.request(registry + path, { method, timeout: 2000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode));
    });
    req.on("error", () => resolve(0));
    req.on("timeout", () => req.destroy());
    req.end(payload ? JSON.stringify(payload) : undefined);
  });
}

server.listen(registry ? 0 : Number(process.env.PORT || 3000), "127.0.0.1", async () => {
  const port = server.address().port;
  if (registry) {
    const status = await registryCall("PUT", "/v1/agent/service/register", {
      ID: id, Name: name, Address: "127.0.0.1", Port: port,
      // Polled by the registry: a killed instance stops passing (and goes).
      Check: { HTTP: `http://127.0.0.1:${port}/`, Interval: "1s",
               DeregisterCriticalServiceAfter: "10s" },
    });
    if (status !== 200) console.error(`registration failed: ${status}`);
  }
  console.log(`listening on ${port} as ${id}`);
  if (process.send) process.send("ready");
});

let stopping = false;
async function shutdown() {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(0), 5000).unref();
  if (registry) {
    await registryCall("PUT", `/v1/agent/service/deregister/${encodeURIComponent(id)}`);
    await new Promise((r) => setTimeout(r, 300)); // the gateway's watch catches up
  }
  server.close(() => process.exit(0));
}
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);

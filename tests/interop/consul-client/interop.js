// Interop: the npm `consul` client (unchanged) against `colony registry`.
// Usage: node interop.js <port>. Every step is asserted; exits non-zero on the
// first failure and after 20 s at most.
"use strict";
const assert = require("node:assert/strict");
const Consul = require("consul");

const port = Number(process.argv[2]);
const consul = new Consul({ host: "127.0.0.1", port });
const deadline = setTimeout(() => fail(new Error("timed out after 20 s")), 20000);

function fail(err) {
  console.error("FAIL:", err && err.stack ? err.stack : err);
  process.exit(1);
}

async function step(name, fn) {
  await fn();
  console.log("ok -", name);
}

// Resolves with the first watch "change" event whose data satisfies pred.
function watchUntil(options, pred, trigger) {
  return new Promise((resolve, reject) => {
    const watch = consul.watch(options);
    let first = true;
    const timer = setTimeout(() => {
      watch.end();
      reject(new Error("watch did not fire within 10 s"));
    }, 10000);
    watch.on("error", (err) => {
      clearTimeout(timer);
      watch.end();
      reject(err);
    });
    watch.on("change", (data) => {
      if (first) {
        first = false; // the initial state: now make the change
        trigger().catch(reject);
        return;
      }
      if (pred(data)) {
        clearTimeout(timer);
        watch.end();
        resolve(data);
      }
    });
  });
}

async function main() {
  await step("status.leader answers", async () => {
    const leader = await consul.status.leader();
    assert.equal(typeof leader, "string");
  });

  await step("agent.service.register with a TTL check", async () => {
    await consul.agent.service.register({
      name: "web",
      id: "web-1",
      address: "127.0.0.1",
      port: 8080,
      tags: ["v1", "primary"],
      meta: { version: "1.2.3" },
      check: { ttl: "30s" },
    });
    await consul.agent.service.register({
      name: "web",
      id: "web-2",
      address: "127.0.0.1",
      port: 8081,
      check: { ttl: "30s" },
    });
  });

  await step("agent.service.list shows both instances", async () => {
    const services = await consul.agent.service.list();
    assert.ok(services["web-1"], "web-1 listed");
    assert.equal(services["web-1"].Service, "web");
    assert.equal(services["web-1"].Port, 8080);
    assert.ok(services["web-2"], "web-2 listed");
  });

  await step("health.service passing: none before the TTL check passes", async () => {
    const entries = await consul.health.service({ service: "web", passing: true });
    assert.ok(Array.isArray(entries));
    assert.equal(entries.length, 0, JSON.stringify(entries));
  });

  await step("agent.check.pass, then health.service passing has web-1 only", async () => {
    await consul.agent.check.pass({ id: "service:web-1", note: "interop" });
    const entries = await consul.health.service({ service: "web", passing: true });
    assert.equal(entries.length, 1, JSON.stringify(entries));
    const e = entries[0];
    assert.equal(e.Service.ID, "web-1");
    assert.equal(e.Service.Port, 8080);
    assert.deepEqual(e.Service.Tags, ["v1", "primary"]);
    assert.equal(e.Service.Meta.version, "1.2.3");
    assert.ok(e.Node && typeof e.Node.Node === "string");
    assert.ok(e.Checks.every((c) => c.Status === "passing"), JSON.stringify(e.Checks));
    const all = await consul.health.service({ service: "web" });
    assert.equal(all.length, 2);
  });

  await step("catalog.service.nodes lists both instances", async () => {
    const nodes = await consul.catalog.service.nodes("web");
    assert.equal(nodes.length, 2);
    assert.ok(nodes.some((n) => n.ServiceID === "web-2" && n.ServicePort === 8081));
  });

  await step("kv.set / kv.get", async () => {
    assert.equal(await consul.kv.set("interop/config/a", "alpha"), true);
    assert.equal(await consul.kv.set({ key: "interop/config/b", value: "béta ✓" }), true);
    const a = await consul.kv.get("interop/config/a");
    assert.equal(a.Key, "interop/config/a");
    assert.equal(a.Value, "alpha");
    assert.ok(a.ModifyIndex > 0 && a.CreateIndex > 0);
    const b = await consul.kv.get("interop/config/b");
    assert.equal(b.Value, "béta ✓");
    assert.equal(await consul.kv.get("interop/missing"), undefined);
  });

  await step("kv.set with cas: stale index loses, current wins", async () => {
    const a = await consul.kv.get("interop/config/a");
    // a lost CAS answers `false`; this client (papi) hands falsy bodies back as undefined
    const lost = await consul.kv.set({ key: "interop/config/a", value: "x", cas: a.ModifyIndex + 1000 });
    assert.notEqual(lost, true);
    assert.equal((await consul.kv.get("interop/config/a")).Value, "alpha");
    assert.equal(await consul.kv.set({ key: "interop/config/a", value: "alpha2", cas: a.ModifyIndex }), true);
    assert.equal((await consul.kv.get("interop/config/a")).Value, "alpha2");
  });

  await step("kv.keys and kv.get recurse list the prefix", async () => {
    const keys = await consul.kv.keys("interop/config/");
    assert.deepEqual([...keys].sort(), ["interop/config/a", "interop/config/b"]);
    const all = await consul.kv.get({ key: "interop/", recurse: true });
    assert.equal(all.length, 2);
  });

  await step("kv.del removes a key", async () => {
    await consul.kv.del("interop/config/b");
    assert.equal(await consul.kv.get("interop/config/b"), undefined);
    assert.deepEqual(await consul.kv.keys("interop/config/"), ["interop/config/a"]);
  });

  await step("watch on kv.get fires on a change", async () => {
    const data = await watchUntil(
      { method: consul.kv.get, options: { key: "interop/config/a", wait: "5s" } },
      (d) => d && d.Value === "changed",
      () => consul.kv.set("interop/config/a", "changed"),
    );
    assert.equal(data.Value, "changed");
  });

  await step("watch on health.service fires when an instance turns passing", async () => {
    const data = await watchUntil(
      { method: consul.health.service, options: { service: "web", passing: true, wait: "5s" } },
      (d) => Array.isArray(d) && d.length === 2,
      () => consul.agent.check.pass("service:web-2"),
    );
    assert.deepEqual(data.map((e) => e.Service.ID).sort(), ["web-1", "web-2"]);
  });

  await step("agent.check.fail turns web-1 critical", async () => {
    await consul.agent.check.fail({ id: "service:web-1", note: "down" });
    const entries = await consul.health.service({ service: "web", passing: true });
    assert.deepEqual(entries.map((e) => e.Service.ID), ["web-2"]);
  });

  await step("agent.service.deregister removes an instance", async () => {
    await consul.agent.service.deregister("web-1");
    await consul.agent.service.deregister({ id: "web-2" });
    const entries = await consul.health.service({ service: "web" });
    assert.equal(entries.length, 0);
    const services = await consul.agent.service.list();
    assert.equal(services["web-1"], undefined);
  });

  clearTimeout(deadline);
  console.log("interop: all steps passed");
}

main().catch(fail);

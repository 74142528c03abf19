-- wrk script for bench/registry. Environment (read at init):
--   BENCH_MODE  colony-put | colony-get | etcd-put | etcd-get | etcd-get-serializable | colony-health
--   BENCH_KEYS  number of distinct keys (default 1000); BENCH_SERVICES for colony-health (100)
-- Prints one "BENCH_JSON {...}" line like bench/http-hello/report.lua.
local mode = os.getenv("BENCH_MODE") or "colony-get"
local nkeys = tonumber(os.getenv("BENCH_KEYS") or "1000")
local nservices = tonumber(os.getenv("BENCH_SERVICES") or "100")
local value = string.rep("v", 64)

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(data)
  return ((data:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#data % 3 + 1])
end

local requests = {}
local counter = 0

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
  local hdr_json = { ["Content-Type"] = "application/json" }
  for i = 1, nkeys do
    local key = "bench/key" .. i
    if mode == "colony-put" then
      requests[i] = wrk.format("PUT", "/v1/kv/" .. key, nil, value)
    elseif mode == "colony-get" then
      requests[i] = wrk.format("GET", "/v1/kv/" .. key)
    elseif mode == "etcd-put" then
      requests[i] = wrk.format("POST", "/v3/kv/put", hdr_json,
        '{"key":"' .. b64(key) .. '","value":"' .. b64(value) .. '"}')
    elseif mode == "etcd-get" then
      requests[i] = wrk.format("POST", "/v3/kv/range", hdr_json, '{"key":"' .. b64(key) .. '"}')
    elseif mode == "etcd-get-serializable" then
      requests[i] = wrk.format("POST", "/v3/kv/range", hdr_json,
        '{"key":"' .. b64(key) .. '","serializable":true}')
    end
  end
  if mode == "colony-health" then
    for i = 1, nservices do
      requests[i] = wrk.format("GET", "/v1/health/service/svc" .. i .. "?passing")
    end
  end
end

function request()
  return requests[math.random(1, #requests)]
end

done = function(summary, latency, reqs)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end

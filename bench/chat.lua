-- wrk script for bench/run.sh: POST an OpenAI chat request (~600 B JSON) to the given URL.
-- The request is built once per thread (no per-request Lua), so wrk stays cheap; the summary is
-- written as one JSON line by done().
--
-- Environment:
--   BENCH_BODY      path of the JSON body (request.json or request-stream.json)
--   BENCH_HEADERS   extra headers, "Name: value|Name2: value2" (optional)
--   BENCH_RESULT    if set, the JSON summary line is appended to this file
--   BENCH_TAG       free text copied into that line

local function read_file(p)
  local f = assert(io.open(p, "rb"), "cannot open " .. tostring(p))
  local s = f:read("*a"); f:close(); return s
end

wrk.method = "POST"
wrk.body = read_file(os.getenv("BENCH_BODY") or "request.json")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"

local extra = os.getenv("BENCH_HEADERS") or ""
for item in string.gmatch(extra, "[^|]+") do
  local k, v = string.match(item, "^%s*([^:]+):%s*(.-)%s*$")
  if k then wrk.headers[k] = v end
end

function done(summary, latency, requests)
  local s, e = summary, summary.errors
  local secs = s.duration / 1e6
  local line = string.format(
    '{"tag":"%s","requests":%d,"duration_s":%.3f,"rps":%.1f,"bytes":%d,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d,' ..
    '"lat_mean_ms":%.3f,"lat_p50_ms":%.3f,"lat_p90_ms":%.3f,"lat_p99_ms":%.3f,' ..
    '"lat_p999_ms":%.3f,"lat_max_ms":%.3f}',
    os.getenv("BENCH_TAG") or "", s.requests, secs, s.requests / secs, s.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean / 1000, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency:percentile(99.9) / 1000, latency.max / 1000)
  io.write("RESULT " .. line .. "\n")
  local out = os.getenv("BENCH_RESULT")
  if out and out ~= "" then
    local f = io.open(out, "a"); f:write(line .. "\n"); f:close()
  end
end

-- wrk script: POST the file named by BENCH_BODY_FILE to the URL given to wrk,
-- with Content-Type: application/json, over keep-alive connections (wrk's default).
-- At the end it prints one line "BENCH_JSON {...}" that bench.py parses, so the
-- figures come from wrk's own histogram rather than its rounded text output.

local body_path = os.getenv("BENCH_BODY_FILE")
if body_path == nil then
  error("set BENCH_BODY_FILE to the request body file")
end
local file = assert(io.open(body_path, "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"latency_mean_us": %.1f, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"err_connect": %d, "err_read": %d, "err_write": %d, "err_status": %d, "err_timeout": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end

-- wrk script: GET the URL given to wrk (GET /v1/jobs/{id} of one existing job) and count
-- statuses. done() prints one line "BENCHJSON {...}" that bench.py keeps.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   c200, cother = 0, 0
end

function response(status, headers, body)
   if status == 200 then c200 = c200 + 1 else cother = cother + 1 end
end

function done(summary, latency, requests)
   local a, o = 0, 0
   for _, t in ipairs(threads) do
      a = a + (t:get("c200") or 0)
      o = o + (t:get("cother") or 0)
   end
   local secs = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format(
      'BENCHJSON {"requests":%d,"duration_s":%.3f,"rps":%.1f,"ok_rps":%.1f,"status_200":%d,"status_other":%d,' ..
      '"err_connect":%d,"err_read":%d,"err_write":%d,"err_timeout":%d,"err_status":%d,' ..
      '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"mean_ms":%.3f}\n',
      summary.requests, secs, summary.requests / secs, a / secs, a, o,
      e.connect, e.read, e.write, e.timeout, e.status,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
      latency.max / 1000, latency.mean / 1000))
end

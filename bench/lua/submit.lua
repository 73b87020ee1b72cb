-- wrk script: POST /v1/jobs with a unique clip per request, so every request is a new job
-- (a repeated spec would be an idempotent 200 that does no work).
--   wrk -s submit.lua URL -- SOURCE_URL
-- Bodies: {"url": SOURCE_URL, "start": "00:00:01", "stop": <2 s + thread*100 s + n µs>}, i.e.
-- stop = HH:MM:SS.ffffff with both seconds and fraction varying; all stops stay under 1 h
-- (the default clip limit) for up to 30 wrk threads and 10^8 requests per thread.
-- done() prints one line "BENCHJSON {...}" that bench.py keeps.

local threads = {}

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

function init(args)
   source = args[1] or "http://127.0.0.1:9/v.mp4"
   n = 0
   c202, c200, cother = 0, 0, 0
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   n = n + 1
   local us = 2000000 + tid * 100000000 + n
   local s = math.floor(us / 1000000)
   local frac = us % 1000000
   local stop = string.format("%02d:%02d:%02d.%06d", math.floor(s / 3600), math.floor(s / 60) % 60, s % 60, frac)
   local body = '{"url":"' .. source .. '","start":"00:00:01","stop":"' .. stop .. '"}'
   return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
   if status == 202 then c202 = c202 + 1
   elseif status == 200 then c200 = c200 + 1
   else cother = cother + 1 end
end

function done(summary, latency, requests)
   local a, b, o = 0, 0, 0
   for _, t in ipairs(threads) do
      a = a + (t:get("c202") or 0)
      b = b + (t:get("c200") or 0)
      o = o + (t:get("cother") or 0)
   end
   local secs = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format(
      'BENCHJSON {"requests":%d,"duration_s":%.3f,"rps":%.1f,"ok_rps":%.1f,"status_202":%d,"status_200":%d,"status_other":%d,' ..
      '"err_connect":%d,"err_read":%d,"err_write":%d,"err_timeout":%d,"err_status":%d,' ..
      '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"mean_ms":%.3f}\n',
      summary.requests, secs, summary.requests / secs, a / secs, a, b, o,
      e.connect, e.read, e.write, e.timeout, e.status,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
      latency.max / 1000, latency.mean / 1000))
end

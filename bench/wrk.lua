-- wrk script for bench/run.py: one request shape per run, counted and summarised as JSON.
--
--   wrk ... -s bench/wrk.lua <url> -- <method> <tokens file or -> [<body>]
--
-- The tokens file (a Lua chunk returning a list of strings) is written by run.py to a private
-- temporary directory, so access tokens never appear on a command line. Each thread starts at
-- a different token and takes them in turn, so last-used updates spread over several rows.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("offset", #threads)
end

function init(args)
   local method, tokens_file, body = args[1], args[2], args[3]
   local headers = {}
   for name, value in pairs(wrk.headers) do headers[name] = value end
   if body then headers["Content-Type"] = "application/json" end

   -- Format every request once: request() then only picks the next one.
   prepared = {}
   if tokens_file and tokens_file ~= "-" then
      for _, token in ipairs(dofile(tokens_file)) do
         headers["Authorization"] = "Bearer " .. token
         table.insert(prepared, wrk.format(method, wrk.path, headers, body))
      end
   else
      table.insert(prepared, wrk.format(method, wrk.path, headers, body))
   end
   next_request = offset or 1
   non2xx = 0
end

function request()
   local req = prepared[(next_request - 1) % #prepared + 1]
   next_request = next_request + 1
   return req
end

-- wrk's own status error count only covers 4xx and 5xx; a valid call must get a 2xx.
function response(status, headers, body)
   if status < 200 or status > 299 then non2xx = non2xx + 1 end
end

function done(summary, latency)
   local bad = 0
   for _, thread in ipairs(threads) do bad = bad + thread:get("non2xx") end
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, ' ..
      '"p99_us": %d, "max_us": %d, "non2xx": %d, "connect": %d, "read": %d, ' ..
      '"write": %d, "timeout": %d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, bad, e.connect, e.read, e.write, e.timeout))
end

-- wrk script for bench/redeem.sh: every request redeems a distinct, pre-created exchange code.
--
--   wrk -t T -c C -d D -s bench/redeem.lua URL -- CODES_FILE T BASIC_AUTH_VALUE
--
-- Thread k (0-based) takes the codes on lines k+1, k+1+T, k+1+2T, … of CODES_FILE, so no code
-- is ever sent twice. A thread that runs out sends the literal code "exhausted" (rejected by
-- braid), counted apart: such a run is a failed measurement (use more codes or a shorter run).
-- done() prints the counts and one machine-readable line starting with "RESULT".

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

function init(args)
   local file, nthreads = args[1], tonumber(args[2])
   local headers = {
      ["Authorization"] = args[3],
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Accept"] = "application/json",
   }
   codes = {}
   local i = 0
   for line in io.lines(file) do
      if i % nthreads == id and line ~= "" then
         codes[#codes + 1] = line
      end
      i = i + 1
   end
   ncodes = #codes
   used, ok, rejected, exhausted, first_rejection = 0, 0, 0, 0, ""
   local prefix = "grant_type=authorization_code&code="
   local suffix = "&redirect_uri=https%3A%2F%2Fapp.example%2Fcb"
   make = function(code)
      return wrk.format("POST", "/auth/exchange-code", headers, prefix .. code .. suffix)
   end
end

function request()
   used = used + 1
   local code = codes[used]
   if code == nil then
      exhausted = exhausted + 1
      code = "exhausted"
   end
   return make(code)
end

function response(status, headers, body)
   if status == 200 then
      ok = ok + 1
   else
      rejected = rejected + 1
      if first_rejection == "" then
         first_rejection = status .. " " .. string.sub(body or "", 1, 300)
      end
   end
end

function done(summary, latency, requests)
   local t = { ok = 0, rejected = 0, exhausted = 0, codes = 0 }
   local why = ""
   for _, thread in ipairs(threads) do
      t.ok = t.ok + thread:get("ok")
      t.rejected = t.rejected + thread:get("rejected")
      t.exhausted = t.exhausted + thread:get("exhausted")
      t.codes = t.codes + thread:get("ncodes")
      if why == "" then why = thread:get("first_rejection") end
   end
   local e = summary.errors
   local socket_errors = e.connect + e.read + e.write + e.timeout
   local seconds = summary.duration / 1e6
   io.write(string.format("redemptions: %d ok (200), %d rejected (non-200), %d sent after a thread ran out of codes (%d codes loaded)\n",
                          t.ok, t.rejected, t.exhausted, t.codes))
   if why ~= "" then io.write("first rejection: " .. why .. "\n") end
   io.write(string.format("socket errors: connect %d, read %d, write %d, timeout %d\n", e.connect, e.read, e.write, e.timeout))
   io.write(string.format("latency: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
                          latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
   io.write(string.format("redemptions/s: %.0f (%d in %.2f s)\n", t.ok / seconds, t.ok, seconds))
   io.write(string.format("RESULT ok=%d rejected=%d exhausted=%d socket_errors=%d seconds=%.3f rate=%.1f\n",
                          t.ok, t.rejected, t.exhausted, socket_errors, seconds, t.ok / seconds))
end

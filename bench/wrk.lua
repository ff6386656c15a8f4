-- wrk script for the load benchmarks (bench/benchlib.py runs it; Debian's `wrk` package).
--
-- Environment:
--   WRK_METHOD   GET (default) or POST
--   WRK_HEADERS  extra headers, "Name: value|Name: value"
--   WRK_BODY     "report": a report with a random place for every POST; else the body as is
--   WRK_AREA     "south,west,height,width" in degrees for those places (default: a London box,
--                "51.45,-0.2,0.1,0.15", about 11 x 10 km)
--   WRK_RATE     requests per second for the whole run; 0 or unset: closed loop (saturate)
--   WRK_THREADS  wrk's -t, so each thread takes its share of the rate
--
-- Open loop: each thread keeps one schedule, a send every threads/RATE seconds; whichever of
-- its connections is free takes the next slot, so the send rate does not depend on how fast
-- answers come back as long as a connection is free (use connections >> rate x latency). A
-- send that leaves more than 5 ms after its slot counts as "late" (the generator could not
-- keep the schedule: the figures are then closed-loop and understate latency).
-- done() prints one line: "RESULT {json}".

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } wrk_timespec;
  int clock_gettime(int clock, wrk_timespec *ts);
]]
local ts = ffi.new("wrk_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local method = os.getenv("WRK_METHOD") or "GET"
local body_mode = os.getenv("WRK_BODY") or ""
local rate = tonumber(os.getenv("WRK_RATE") or "0")
local threads = tonumber(os.getenv("WRK_THREADS") or "1")
local headers = {}
for pair in string.gmatch(os.getenv("WRK_HEADERS") or "", "[^|]+") do
  local name, value = string.match(pair, "^%s*([^:]+):%s*(.*)$")
  if name then headers[name] = value end
end
if method == "POST" then headers["Content-Type"] = "application/json" end

local interval = rate > 0 and (1000.0 * threads / rate) or 0
local next_slot = nil
late = 0
local categories = { "harassment", "poor_lighting", "theft", "assault", "other" }
local area = {}
for v in string.gmatch(os.getenv("WRK_AREA") or "51.45,-0.2,0.1,0.15", "[^,]+") do
  table.insert(area, tonumber(v))
end

function init(args)
  math.randomseed(math.floor(now_ms() * 1000) % 2147483647)
end

function delay()
  if interval == 0 then return 0 end
  local now = now_ms()
  if next_slot == nil then next_slot = now + math.random() * interval end
  local slot = next_slot
  next_slot = next_slot + interval
  local wait = slot - now
  if wait < -5 then late = late + 1 end
  if wait < 0 then return 0 end
  return math.floor(wait)
end

function request()
  local body = nil
  if body_mode == "report" then
    body = string.format(
      '{"lat": %.6f, "lon": %.6f, "category": "%s", "description": "bench"}',
      area[1] + math.random() * area[3], area[2] + math.random() * area[4],
      categories[math.random(#categories)])
  elseif body_mode ~= "" then
    body = body_mode
  end
  return wrk.format(method, nil, headers, body)
end

local all_threads = {}
function setup(thread)
  table.insert(all_threads, thread)
end

function done(summary, latency, requests)
  local total_late = 0
  for _, t in ipairs(all_threads) do total_late = total_late + (t:get("late") or 0) end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_s": %.3f, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, ' ..
    '"max_ms": %.3f, "late": %d}\n',
    summary.requests, summary.duration / 1e6, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, total_late))
end

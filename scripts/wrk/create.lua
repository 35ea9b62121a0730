-- wrk: POST /v1/reminders with a new identity on every request (so each one creates a row).
local counter = 0
-- thread_id is set per thread by setup() (a global of that thread's Lua state).
-- NUDGE_BENCH_TOKEN, when set, is sent as the bearer token (bench.sh creates one).
local token = os.getenv("NUDGE_BENCH_TOKEN")
local headers = {["Content-Type"] = "application/json"}
if token then headers["Authorization"] = "Bearer " .. token end

function setup(thread)
  thread:set("thread_id", math.random(1, 1e9))
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"entity_type":"bench","entity_id":"%d-%d","event_type":"create","channel":"log",' ..
    '"schedule_type":"one_time","run_at":"2099-01-01T00:00:00Z","payload":{"n":%d}}',
    thread_id, counter, counter)
  return wrk.format("POST", "/v1/reminders", headers, body)
end

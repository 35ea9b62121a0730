-- wrk: POST /v1/events/batch with 1,000 events for new entities per request.
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
  local items = {}
  for i = 1, 1000 do
    counter = counter + 1
    items[i] = string.format(
      '{"event_type":"interview_completed","entity_type":"interviewer","entity_id":"%d-%d",' ..
      '"data":{"candidate":"C-%d","email":"i%d@example.com"}}', thread_id, counter, counter,
      counter)
  end
  local body = '{"items":[' .. table.concat(items, ",") .. ']}'
  return wrk.format("POST", "/v1/events/batch", headers, body)
end

-- wrk: POST /v1/reminders with a new identity on every request (so each one creates a row).
local counter = 0
local headers = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "common.lua")

function request()
  counter = counter + 1
  local body = string.format(
    '{"entity_type":"bench","entity_id":"%d-%d","event_type":"create","channel":"log",' ..
    '"schedule_type":"one_time","run_at":"2099-01-01T00:00:00Z","payload":{"n":%d}}',
    thread_id, counter, counter)
  return wrk.format("POST", "/v1/reminders", headers, body)
end

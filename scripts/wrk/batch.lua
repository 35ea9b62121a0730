-- wrk: POST /v1/reminders/batch with 1,000 new reminders per request.
local counter = 0
local headers = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "common.lua")

function request()
  local items = {}
  for i = 1, 1000 do
    counter = counter + 1
    items[i] = string.format(
      '{"entity_type":"bench","entity_id":"%d-%d","event_type":"batch","channel":"log",' ..
      '"schedule_type":"one_time","run_at":"2099-01-01T00:00:00Z"}', thread_id, counter)
  end
  local body = '{"items":[' .. table.concat(items, ",") .. ']}'
  return wrk.format("POST", "/v1/reminders/batch", headers, body)
end

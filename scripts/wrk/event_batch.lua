-- wrk: POST /v1/events/batch with 1,000 events for new entities per request.
local counter = 0
local headers = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "common.lua")

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

-- wrk: PUT /v1/flags/{key} with a new key on every request (so each one inserts a flag).
local counter = 0
local headers = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "common.lua")

function request()
  counter = counter + 1
  return wrk.format("PUT", string.format("/v1/flags/done:%d-%d", thread_id, counter), headers,
    '{"value":true}')
end

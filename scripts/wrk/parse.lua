-- wrk: POST /v1/schedules/parse, cycling through phrases of each kind (one-off, interval, cron
-- with days, a window, bounds and a zone), read in Europe/Berlin.
local phrases = {
  "tomorrow at 9",
  "in 10 minutes",
  "every 2 hours until feedback_submitted",
  "every weekday at 9am until feedback_submitted, 5 times",
  "every monday and thursday at 10:30 Berlin time",
  "every 15 minutes between 09:00 and 17:59 on weekdays",
  "on the last day of every month at 17:00 New York time",
  "At 09:00 AM, Monday through Friday",
}
local counter = 0

function request()
  counter = counter + 1
  local body = string.format('{"text":"%s","timezone":"Europe/Berlin"}',
                             phrases[counter % #phrases + 1])
  return wrk.format("POST", "/v1/schedules/parse", {["Content-Type"] = "application/json"}, body)
end

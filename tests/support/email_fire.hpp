#pragma once
// The fire the email tests send, shared so the message tests (unit) and the channel tests
// (real SMTP server) check the same headers. Header only: it needs the worker's fire.hpp, which
// only the suites linking nudge_worker_core see.

#include "fire.hpp"

namespace nudge::test {

inline Fire email_fire() {
  Fire fire;
  fire.id = 4217;
  fire.entity_type = "interviewer";
  fire.entity_id = "INT_100";
  fire.event_type = "feedback_form";
  fire.channel = "email";
  fire.target = "alice@example.com";
  fire.payload_json = R"({"candidate": "CAND_7", "round": 2})";
  fire.schedule_type = "recurring";
  fire.scheduled_for = "2026-11-22 09:00:00.5+00";
  fire.attempt = 1;
  fire.max_attempts = 3;
  return fire;
}

}  // namespace nudge::test

// Schedules before they become reminders: their next fire times (preview), and schedules in
// plain words (parse), both with the schedule's canonical sentence.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "errors.hpp"
#include "input.hpp"
#include "nudge/database.hpp"
#include "route_support.hpp"
#include "routes.hpp"
#include "schedule_words.hpp"
#include "word_lexicon.hpp"

namespace nudge::api {
namespace {

using nlohmann::json;

// 422 naming the words of the text that could not be placed.
ApiError not_understood(const std::vector<std::string>& words, const std::string& message) {
  return ApiError(422, "not_understood", message, "text", json{{"unparsed", words}});
}

std::optional<std::string> moment_json(const std::optional<words::Moment>& m) {
  if (!m) return std::nullopt;
  return m->json.dump();
}

std::string joined(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

// The database's answer for a parsed phrase; what it refuses that the text said (a zone or a
// cron expression it does not know) is the text's fault: 422 naming those words.
pqxx::row resolve(ConnectionPool& pool, const words::Schedule& s,
                  const std::optional<std::string>& now) {
  try {
    return on_connection(pool, [&](pqxx::nontransaction& tx) {
      return tx.exec_prepared1("parse_schedule", s.timezone, now, s.schedule_type,
                               moment_json(s.run_at), moment_json(s.ends_at), s.interval_seconds,
                               s.cron, s.stop_flag, s.max_fires);
    });
  } catch (const pqxx::sql_error& e) {
    const std::string message = primary_message(e.what());
    if (e.sqlstate() == "22023" && s.zone_from_text && message.rfind("timezone:", 0) == 0) {
      // "(CEST)": read as a zone's name, which the database does not know.
      if (s.zone_words.size() == 1 && words::is_zone_abbreviation(s.zone_words[0]))
        throw not_understood(s.zone_words, words::zone_abbreviation_problem(s.zone_words[0]));
      throw not_understood(s.zone_words, "\"" + joined(s.zone_words) + "\" is not a time zone");
    }
    if (e.sqlstate() == "22023" && !s.cron_words.empty() && message.rfind("cron:", 0) == 0)
      throw not_understood(s.cron_words, "the cron expression is not valid: " + message);
    // The fires are listed from `now`, which the preview calls its from.
    if (e.sqlstate() == "22023" && message.rfind("from: ", 0) == 0)
      throw bad_field("now", "invalid_value", message.substr(6));
    throw;
  }
}

}  // namespace

void add_schedule_routes(Router& router, ConnectionPool& pool, const MisfireConfig& misfire) {
  router.add(
      "POST", "/v1/schedules/preview",
      [&pool, misfire](const httplib::Request& req, httplib::Response& res) {
        reject_unknown_params(req, {});
        const PreviewInput in = parse_preview(parse_object(req.body));
        pqxx::row row;
        try {
          row = on_connection(pool, [&](pqxx::nontransaction& tx) {
            return tx.exec_prepared1("preview", in.schedule_type, in.from, in.count, in.run_at,
                                     in.interval_seconds, in.cron, in.timezone, in.max_fires,
                                     in.ends_at, in.text_timezone, in.misfire_policy,
                                     misfire.threshold_seconds, misfire.fire_all_cap,
                                     in.stop_condition_type, in.stop_condition_value);
          });
        } catch (const pqxx::sql_error& e) {
          // Only the sentence reads text_timezone, and the database names the zone it checks.
          const std::string prefix = "timezone: ";
          const std::string message = primary_message(e.what());
          if (in.text_timezone && !in.timezone && in.schedule_type != "cron" &&
              e.sqlstate() == "22023" && message.rfind(prefix, 0) == 0) {
            throw bad_field("text_timezone", "invalid_value", message.substr(prefix.size()));
          }
          throw;
        }
        reply(
            res, 200,
            json{{"times", json::parse(row[0].c_str())}, {"schedule_text", row[1].c_str()}}.dump());
      });

  router.add(
      "POST", "/v1/schedules/parse", [&pool](const httplib::Request& req, httplib::Response& res) {
        reject_unknown_params(req, {});
        const WordsInput in = parse_words(parse_object(req.body));
        const words::Result parsed = words::parse(in.text, in.timezone);
        if (!parsed.schedule) throw not_understood(parsed.refusal.unparsed, parsed.refusal.message);
        const words::Schedule& s = *parsed.schedule;
        const pqxx::row row = resolve(pool, s, in.now);
        if (row[2].as<bool>()) {
          throw not_understood(s.run_at->words,
                               "\"" + joined(s.run_at->words) + "\" is in the past");
        }
        if (row[3].as<bool>()) {
          throw not_understood(s.ends_at->words,
                               "\"" + joined(s.ends_at->words) + "\" ends before the first fire");
        }
        json schedule{{"schedule_type", s.schedule_type}};
        if (!row[0].is_null()) {
          schedule["run_at"] = row[0].c_str();
        } else if (s.counted_from_now()) {
          // "for 1 minute" ends a minute after this now: the schedule starts at it too, or a
          // create made from it would start a moment later and lose its last fire.
          schedule["run_at"] = row[7].c_str();
        }
        if (s.interval_seconds) schedule["interval_seconds"] = *s.interval_seconds;
        if (s.cron) {
          schedule["cron"] = *s.cron;
          schedule["timezone"] = row[6].c_str();  // as the tz database spells it
        }
        if (s.stop_flag) {
          schedule["stop_condition_type"] = "db_check";
          schedule["stop_condition_value"] = *s.stop_flag;
        }
        if (s.max_fires) schedule["max_fires"] = *s.max_fires;
        if (!row[1].is_null()) schedule["ends_at"] = row[1].c_str();
        reply(res, 200,
              json{{"schedule", schedule},
                   {"text", row[4].c_str()},
                   {"times", json::parse(row[5].c_str())}}
                  .dump());
      });
}

}  // namespace nudge::api

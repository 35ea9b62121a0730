// Ended attempts whose reminders another transaction holds: kept and tried again one by one,
// ever less often, the others recorded at once; an outcome the database refuses for its own
// sake is set aside, and a lost connection stops the tries and keeps what was not tried.

#include "locked_outcomes.hpp"

#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <set>

namespace nudge::test {
namespace {

FireOutcome outcome(std::int64_t id) {
  FireOutcome o;
  o.id = id;
  return o;
}

TEST(LockedOutcomes, HeldRowsWaitTheOthersAreRecordedAndTheWaitDoubles) {
  std::set<std::int64_t> held{2, 3};
  std::vector<std::int64_t> recorded, set_aside;
  int asked = 0;
  LockedOutcomes locked(
      "w1",
      [&](const FireOutcome& o) {
        if (held.contains(o.id))
          throw pqxx::sql_error("canceling statement due to lock timeout", "", "55P03");
        if (o.id == 4) throw pqxx::sql_error("a row the database refuses", "", "23514");
        recorded.push_back(o.id);
      },
      [&](const FireOutcome& o, const std::exception& e) {
        if (rows_locked(e)) return false;
        set_aside.push_back(o.id);
        return true;
      },
      [&](const std::vector<std::int64_t>& ids) {
        ++asked;
        std::vector<std::int64_t> free;
        for (const auto id : ids)
          if (!held.contains(id)) free.push_back(id);
        return free;
      });
  const auto before = LockedOutcomes::Clock::now();
  locked.add({outcome(1), outcome(2), outcome(3), outcome(4)},
             pqxx::sql_error("canceling statement due to lock timeout", "", "55P03"));
  EXPECT_EQ(recorded, (std::vector<std::int64_t>{1}));
  EXPECT_EQ(set_aside, (std::vector<std::int64_t>{4}));
  EXPECT_EQ(asked, 1) << "the held rows are asked for, not tried one by one";
  EXPECT_EQ(locked.ids(), (std::vector<std::int64_t>{2, 3}));
  ASSERT_TRUE(locked.next_try());
  EXPECT_GE(*locked.next_try() - before, LockedOutcomes::kFirstWait);

  locked.retry();  // not yet
  EXPECT_EQ(recorded.size(), 1u);
  held.erase(2);
  locked.retry(true);
  EXPECT_EQ(recorded, (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(locked.ids(), (std::vector<std::int64_t>{3}));
  EXPECT_GE(*locked.next_try() - LockedOutcomes::Clock::now(),
            2 * LockedOutcomes::kFirstWait - std::chrono::milliseconds(50));

  held.clear();
  locked.retry(true);
  EXPECT_TRUE(locked.empty());
  EXPECT_FALSE(locked.next_try());
}

TEST(LockedOutcomes, ALostConnectionStopsTheTriesAndKeepsWhatWasNotTried) {
  bool lost = true;
  std::vector<std::int64_t> recorded;
  LockedOutcomes locked(
      "w1",
      [&](const FireOutcome& o) {
        if (o.id == 1) throw pqxx::sql_error("lock timeout", "", "55P03");
        if (lost) throw pqxx::broken_connection("gone");
        recorded.push_back(o.id);
      },
      [](const FireOutcome&, const std::exception&) { return false; },
      [](const std::vector<std::int64_t>& ids) { return ids; });
  EXPECT_THROW(locked.add({outcome(1), outcome(2), outcome(3)},
                          pqxx::sql_error("lock timeout", "", "55P03")),
               pqxx::broken_connection);
  EXPECT_EQ(locked.ids(), (std::vector<std::int64_t>{1, 2, 3}));
  lost = false;
  locked.retry(true);
  EXPECT_EQ(recorded, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(locked.ids(), (std::vector<std::int64_t>{1}));
}

}  // namespace
}  // namespace nudge::test

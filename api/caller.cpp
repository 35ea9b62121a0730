#include "caller.hpp"

#include <pqxx/pqxx>

namespace nudge::api {
namespace {

thread_local const Caller* current = nullptr;

}  // namespace

CallerScope::CallerScope(const Caller& caller) : previous_(current) {
  current = &caller;
}

CallerScope::~CallerScope() {
  current = previous_;
}

const Caller* current_caller() {
  return current;
}

void act_for_caller(ConnectionPool::Lease& lease) {
  if (current == nullptr || !current->changes) return;
  // Neither part can hold a newline: token names are words, routes come from the route table.
  std::string memo = current->token + '\n' + current->route;
  if (lease.session_memo() == memo) return;
  pqxx::nontransaction tx(*lease);
  tx.exec_prepared("act", current->token, current->route);
  lease.session_memo() = std::move(memo);
}

}  // namespace nudge::api

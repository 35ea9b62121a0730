#pragma once
// The version both programs report: project(nudge VERSION ...) in CMakeLists.txt, and the git
// commit they were built from when the build knew it.

#include <string>
#include <string_view>

namespace nudge {

// "<program> <version>", plus " (<short commit>)" when the build knew it:
// "nudge-worker 0.1.0 (abc1234)". What --version prints.
std::string version_line(std::string_view program);

}  // namespace nudge

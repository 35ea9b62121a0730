// Installing Nudge as a service: the .deb scripts/package.sh packs from this build tree
// (--no-build), taken apart with dpkg-deb, and `cmake --install` into temporary roots. What a
// host gets: the programs (stripped, and they run), nudge.toml as a conffile, the two systemd
// units (which systemd-analyze accepts), the maintainer scripts and the Depends dpkg-shlibdeps
// found.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/processes.hpp"

namespace nudge::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::vector<std::string> kPrograms{"nudge-api", "nudge-worker"};
const std::vector<std::string> kUnits{"nudge-api.service", "nudge-worker@.service"};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Every value of `key` in a unit file ("ExecStart" -> {"/usr/bin/nudge-api --config ..."}).
std::vector<std::string> unit_values(const std::string& unit_text, const std::string& key) {
  std::vector<std::string> values;
  std::istringstream lines(unit_text);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with(key + "=")) values.push_back(line.substr(key.size() + 1));
  }
  return values;
}

// The package names of a Depends field, without versions: "a (>= 1), b" -> {a, b}.
std::set<std::string> package_names(const std::string& depends) {
  std::set<std::string> names;
  std::istringstream items(depends);
  for (std::string item; std::getline(items, item, ',');) {
    std::istringstream words(item);
    std::string name;
    words >> name;
    if (!name.empty()) names.insert(name);
  }
  return names;
}

std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

// This process's scratch directory; removed at exit unless a test failed, to show what it saw.
const fs::path& scratch() {
  static const struct Scratch {
    fs::path dir = fs::temp_directory_path() / ("nudge-package-" + std::to_string(::getpid()));
    ~Scratch() {
      if (::testing::UnitTest::GetInstance()->Passed()) fs::remove_all(dir);
    }
  } scratch;
  return scratch.dir;
}

// An empty directory in the scratch directory.
fs::path fresh_dir(const std::string& name) {
  const auto dir = scratch() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// `cmake --install` of this build tree under `prefix`, into DESTDIR `destdir` unless empty.
Finished install(const std::string& prefix, const std::string& destdir = "") {
  std::map<std::string, std::string> env;
  if (!destdir.empty()) env["DESTDIR"] = destdir;
  return run_program({NUDGE_CMAKE_COMMAND, "--install", NUDGE_BUILD_DIR, "--prefix", prefix}, env,
                     120s);
}

// The files under `root`, as paths relative to it.
std::set<std::string> files_under(const fs::path& root) {
  std::set<std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (entry.is_regular_file()) files.insert(fs::relative(entry.path(), root).string());
  }
  return files;
}

// The package is made once for the whole suite (CMakeLists.txt runs this binary as one test).
class Package : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto out = fresh_dir("out");
    packing_ = run_program(
        {"bash", std::string(NUDGE_SOURCE_DIR) + "/scripts/package.sh", "--no-build"},
        {{"NUDGE_BUILD_DIR", NUDGE_BUILD_DIR}, {"NUDGE_PACKAGE_DIR", out.string()}}, 300s);
    std::string last_line;
    std::istringstream lines(packing_.out);
    for (std::string line; std::getline(lines, line);) last_line = line;
    deb_ = last_line;
    root_ = fresh_dir("root");
    extracted_ =
        packing_.exit_code == 0 &&
        run_program({"dpkg-deb", "-x", deb_, root_.string()}, {}, 60s).exit_code == 0 &&
        run_program({"dpkg-deb", "-e", deb_, (root_ / "DEBIAN").string()}, {}, 60s).exit_code == 0;
  }

  void SetUp() override {
    ASSERT_EQ(packing_.exit_code, 0) << packing_.out << packing_.err;
    ASSERT_TRUE(extracted_) << "dpkg-deb could not take " << deb_ << " apart";
  }

  // A field of the package's control file.
  static std::string field(const std::string& name) {
    const auto run = run_program({"dpkg-deb", "-f", deb_, name}, {}, 60s);
    EXPECT_EQ(run.exit_code, 0) << run.err;
    return first_line(run.out);
  }

  static inline Finished packing_;
  static inline std::string deb_;
  static inline fs::path root_;
  static inline bool extracted_ = false;
};

TEST_F(Package, PackageShPrintsTheDebItMadeOnItsLastLine) {
  const auto arch = run_program({"dpkg", "--print-architecture"}, {}, 30s);
  ASSERT_EQ(arch.exit_code, 0) << arch.err;
  EXPECT_TRUE(fs::path(deb_).is_absolute()) << deb_;
  EXPECT_EQ(fs::path(deb_).filename(),
            "nudge_" + std::string(NUDGE_VERSION) + "_" + first_line(arch.out) + ".deb");
  EXPECT_EQ(packing_.out, deb_ + "\n");  // progress goes to stderr
}

TEST_F(Package, ControlNamesNudgeItsVersionAndTheLibrariesTheProgramsLink) {
  EXPECT_EQ(field("Package"), "nudge");
  EXPECT_EQ(field("Version"), NUDGE_VERSION);
  // What dpkg-shlibdeps finds in the two programs, plus adduser for postinst. A library added
  // to the build shows up here.
  const std::set<std::string> expected{"adduser",  "libc6",      "libcpp-httplib0.11",
                                       "libcurl4", "libgcc-s1",  "libpqxx-6.4",
                                       "libssl3",  "libstdc++6", "libtomlplusplus3"};
  EXPECT_EQ(package_names(field("Depends")), expected) << field("Depends");
}

TEST_F(Package, ProgramsAreStrippedAndPrintTheirVersion) {
  for (const auto& name : kPrograms) {
    const auto path = root_ / "usr/bin" / name;
    ASSERT_TRUE(fs::is_regular_file(path)) << path;
    EXPECT_NE(fs::status(path).permissions() & fs::perms::others_exec, fs::perms::none) << path;
    const auto kind = run_program({"file", "-b", path.string()}, {}, 30s);
    EXPECT_NE(kind.out.find("ELF"), std::string::npos) << kind.out;
    EXPECT_NE(kind.out.find(", stripped"), std::string::npos) << kind.out;
    const auto version = run_program({path.string(), "--version"}, {}, 30s);
    EXPECT_EQ(version.exit_code, 0) << version.err;
    EXPECT_EQ(version.out, expected_version_line(name) + "\n");
  }
}

TEST_F(Package, ConfigIsTheDocumentedDefaultsAndAConffile) {
  const auto config = root_ / "etc/nudge/nudge.toml";
  ASSERT_TRUE(fs::is_regular_file(config));
  EXPECT_EQ(read_file(config), read_file(fs::path(NUDGE_SOURCE_DIR) / "config/nudge.toml"));
  EXPECT_EQ(read_file(root_ / "DEBIAN/conffiles"), "/etc/nudge/nudge.toml\n");
}

TEST_F(Package, UnitsRunTheInstalledProgramsAsTheNudgeUser) {
  for (const auto& [unit, program] : {std::pair{"nudge-api.service", "nudge-api"},
                                      std::pair{"nudge-worker@.service", "nudge-worker"}}) {
    const auto path = root_ / "usr/lib/systemd/system" / unit;
    ASSERT_TRUE(fs::is_regular_file(path)) << path;
    const auto text = read_file(path);
    EXPECT_EQ(unit_values(text, "ExecStart"),
              std::vector<std::string>{"/usr/bin/" + std::string(program) +
                                       " --config /etc/nudge/nudge.toml"})
        << unit;
    EXPECT_EQ(unit_values(text, "Type"), std::vector<std::string>{"simple"}) << unit;
    EXPECT_EQ(unit_values(text, "User"), std::vector<std::string>{"nudge"}) << unit;
    EXPECT_EQ(unit_values(text, "EnvironmentFile"), std::vector<std::string>{"-/etc/nudge/env"})
        << unit;
    EXPECT_EQ(unit_values(text, "Restart"), std::vector<std::string>{"on-failure"}) << unit;
    EXPECT_EQ(unit_values(text, "KillSignal"), std::vector<std::string>{"SIGTERM"}) << unit;
    for (const auto* key : {"NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices"}) {
      EXPECT_EQ(unit_values(text, key), std::vector<std::string>{"yes"}) << unit << " " << key;
    }
    EXPECT_EQ(unit_values(text, "ProtectSystem"), std::vector<std::string>{"strict"}) << unit;
    EXPECT_EQ(text.find('@' + std::string("NUDGE_")), std::string::npos) << "unfilled: " << unit;
  }
}

TEST_F(Package, MaintainerScriptsAreShellAndPostinstCreatesTheSystemUser) {
  for (const auto* script : {"postinst", "prerm", "postrm"}) {
    const auto path = root_ / "DEBIAN" / script;
    ASSERT_TRUE(fs::is_regular_file(path)) << script;
    EXPECT_NE(fs::status(path).permissions() & fs::perms::others_exec, fs::perms::none) << script;
    const auto syntax = run_program({"sh", "-n", path.string()}, {}, 30s);
    EXPECT_EQ(syntax.exit_code, 0) << script << ": " << syntax.err;
  }
  EXPECT_NE(read_file(root_ / "DEBIAN/postinst").find("adduser --system --group"),
            std::string::npos);
}

TEST_F(Package, EveryFileBelongsToRoot) {
  const auto listing = run_program({"dpkg-deb", "-c", deb_}, {}, 60s);
  ASSERT_EQ(listing.exit_code, 0) << listing.err;
  std::istringstream lines(listing.out);
  int entries = 0;
  for (std::string line; std::getline(lines, line); ++entries) {
    EXPECT_NE(line.find(" root/root "), std::string::npos) << line;
  }
  EXPECT_GT(entries, 0);
}

TEST_F(Package, CmakeInstallWithPrefixUsrLaysOutWhatThePackageHolds) {
  const auto destdir = fresh_dir("destdir-usr");
  const auto run = install("/usr", destdir.string());
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  auto packaged = files_under(root_);
  std::erase_if(packaged, [](const std::string& f) { return f.starts_with("DEBIAN/"); });
  EXPECT_EQ(files_under(destdir), packaged);
  for (const auto& f : {"etc/nudge/nudge.toml", "usr/lib/systemd/system/nudge-api.service",
                        "usr/lib/systemd/system/nudge-worker@.service"}) {
    EXPECT_EQ(read_file(destdir / f), read_file(root_ / f)) << f;
  }
}

TEST(Install, AnotherPrefixGetsUnitsNamingItThatSystemdAccepts) {
  const auto prefix = fresh_dir("prefix") / "usr";
  const auto run = install(prefix.string());
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  const auto confdir = prefix / "etc/nudge";  // /usr is the only prefix whose config is in /etc
  EXPECT_TRUE(fs::is_regular_file(confdir / "nudge.toml"));
  for (const auto& program : kPrograms) {
    EXPECT_TRUE(fs::is_regular_file(prefix / "bin" / program)) << program;
  }
  const auto units = prefix / "lib/systemd/system";
  const auto worker_unit = read_file(units / "nudge-worker@.service");
  EXPECT_EQ(unit_values(worker_unit, "ExecStart"),
            std::vector<std::string>{(prefix / "bin/nudge-worker").string() + " --config " +
                                     (confdir / "nudge.toml").string()});
  EXPECT_EQ(unit_values(worker_unit, "EnvironmentFile"),
            std::vector<std::string>{"-" + (confdir / "env").string()});
  // Offline checks of every directive (unknown keys, bad values, a missing ExecStart program);
  // the template is checked as instance 1, as `systemctl start nudge-worker@1` loads it.
  for (const auto& unit : {units / "nudge-api.service", units / "nudge-worker@1.service"}) {
    const auto verify = run_program({"systemd-analyze", "verify", unit.string()}, {}, 60s);
    EXPECT_EQ(verify.exit_code, 0) << unit << ": " << verify.err;
    EXPECT_EQ(verify.out + verify.err, "") << unit;
  }
}

TEST(Install, ReinstallKeepsAnEditedConfigAndPutsTheNewDefaultsBesideIt) {
  const auto prefix = fresh_dir("reinstall") / "usr";
  ASSERT_EQ(install(prefix.string()).exit_code, 0);
  const auto config = prefix / "etc/nudge/nudge.toml";
  const std::string edited = read_file(config) + "\n# edited by the admin\n";
  std::ofstream(config, std::ios::trunc) << edited;
  const auto again = install(prefix.string());
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_EQ(read_file(config), edited);
  EXPECT_EQ(read_file(prefix / "etc/nudge/nudge.toml.new"),
            read_file(fs::path(NUDGE_SOURCE_DIR) / "config/nudge.toml"));
}

}  // namespace
}  // namespace nudge::test

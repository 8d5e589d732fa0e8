// cgroup_test.cc: where a container's cgroup lives and what the v1 backend writes, against a
// fake cgroupfs (a temp dir), plus the CPU conversions.
#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "../src/lib/cgroup.h"
#include "../src/lib/fsutil.h"
#include "../src/lib/oci_config.h"
#include "harness.h"

namespace {
std::string temp_dir() {
  char tmpl[] = "/tmp/berth-core-test-XXXXXX";
  char* d = ::mkdtemp(tmpl);
  return d == nullptr ? std::string() : std::string(d);
}
std::string slurp(const std::string& p) {
  std::string s;
  berth::read_file(p, &s, nullptr);
  return s;
}
}  // namespace

TEST(cgroup_v1_builds_parent_slash_id_per_controller) {
  std::string root = temp_dir();
  EXPECT_TRUE(!root.empty());
  berth::Spec s;
  s.id = "c1";
  s.cgroup_parent = "berth/sub";
  s.cgroup_root = root;
  s.cgroup_version = "v1";
  s.memory_bytes = 1048576;
  s.pids = 32;
  auto cg = berth::make_cgroup(s);
  berth::Error e;
  int rc = cg->create(s, &e);
  std::string mem = slurp(root + "/memory/berth/sub/c1/memory.limit_in_bytes");
  std::string pids = slurp(root + "/pids/berth/sub/c1/pids.max");
  std::string cmd = "rm -rf '" + root + "'";
  int ignored = ::system(cmd.c_str());
  (void)ignored;
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(mem, "1048576");
  EXPECT_EQ(pids, "32");
}

TEST(cpu_quota_us_has_a_floor) {
  EXPECT_EQ(berth::cpu_quota_us(500), 50000ull);
  EXPECT_EQ(berth::cpu_quota_us(1000), 100000ull);
  EXPECT_EQ(berth::cpu_quota_us(1), 1000ull);
}

TEST(split_cgroups_path_cases) {
  std::string parent, leaf;
  berth::Error e;
  EXPECT_EQ(berth::split_cgroups_path("/a/b/c", "id", &parent, &leaf, &e), 0);
  EXPECT_EQ(parent, "a/b");
  EXPECT_EQ(leaf, "c");
  EXPECT_EQ(berth::split_cgroups_path("c", "id", &parent, &leaf, &e), 0);
  EXPECT_EQ(parent, "");
  EXPECT_EQ(leaf, "c");
  EXPECT_EQ(berth::split_cgroups_path("", "id", &parent, &leaf, &e), 0);
  EXPECT_EQ(leaf, "id");
  EXPECT_TRUE(berth::split_cgroups_path("/a/../b", "id", &parent, &leaf, &e) < 0);
  EXPECT_TRUE(berth::split_cgroups_path("system.slice:berth:x", "id", &parent, &leaf, &e) < 0);
}

// cgroup_limits_test.cc: the cpu weight mapping, the default device rules in both renderings
// (v1 lines, v2 BPF program accepted by the kernel's verifier) and the v1 swap/shares writes.
#include <errno.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "../src/lib/cgroup.h"
#include "../src/lib/cgroup_devices.h"
#include "../src/lib/fsutil.h"
#include "../src/lib/unique_fd.h"
#include "harness.h"

namespace {
std::string scratch_dir() {
  char tmpl[] = "/tmp/berth-cglimits-test-XXXXXX";
  char* d = ::mkdtemp(tmpl);
  return d == nullptr ? std::string() : std::string(d);
}
std::string slurp(const std::string& p) {
  std::string s;
  berth::read_file(p, &s, nullptr);
  return s;
}
}  // namespace

TEST(cpu_shares_and_weight_follow_kubernetes) {
  EXPECT_EQ(berth::cpu_shares(1000), 1024ull);
  EXPECT_EQ(berth::cpu_shares(250), 256ull);
  EXPECT_EQ(berth::cpu_shares(1), 2ull);  // the kernel minimum
  EXPECT_EQ(berth::cpu_weight(2), 1ull);
  EXPECT_EQ(berth::cpu_weight(1024), 39ull);
  EXPECT_EQ(berth::cpu_weight(262144), 10000ull);
}

TEST(device_rules_render_as_v1_lines) {
  const auto& rules = berth::default_device_rules();
  EXPECT_EQ(berth::device_rule_v1(rules.front()), std::string("c *:* m"));
  bool pts = false, null_dev = false;
  for (const auto& r : rules) {
    std::string line = berth::device_rule_v1(r);
    pts = pts || line == "c 136:* rwm";
    null_dev = null_dev || line == "c 1:3 rwm";
  }
  EXPECT_TRUE(pts);
  EXPECT_TRUE(null_dev);
}

TEST(device_program_jumps_stay_inside_and_end_with_deny) {
  auto prog = berth::build_device_program(berth::default_device_rules());
  EXPECT_TRUE(prog.size() > 8);
  for (size_t i = 0; i < prog.size(); i++) {
    if (BPF_CLASS(prog[i].code) == BPF_JMP && BPF_OP(prog[i].code) == BPF_JNE) {
      EXPECT_TRUE(prog[i].off > 0);
      EXPECT_TRUE(i + 1 + static_cast<size_t>(prog[i].off) < prog.size());
    }
  }
  EXPECT_EQ(static_cast<int>(prog[prog.size() - 2].imm), 0);  // r0 = 0
  EXPECT_EQ(static_cast<int>(prog.back().code), BPF_JMP | BPF_EXIT);
}

TEST(device_program_passes_the_kernel_verifier) {
  auto prog = berth::build_device_program(berth::default_device_rules());
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = reinterpret_cast<uintptr_t>(prog.data());
  attr.insn_cnt = static_cast<uint32_t>(prog.size());
  attr.license = reinterpret_cast<uintptr_t>("Apache-2.0");
  berth::unique_fd fd(static_cast<int>(::syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr)));
  // Without CAP_SYS_ADMIN (or without BPF in the kernel) there is nothing to verify against.
  if (!fd.valid() && (errno == EPERM || errno == ENOSYS)) return;
  EXPECT_TRUE(fd.valid());
}

TEST(cgroup_v1_writes_memsw_shares_and_device_rules) {
  std::string root = scratch_dir();
  EXPECT_TRUE(!root.empty());
  // A fake tree has no memsw file unless the "kernel" has swap accounting: create one.
  berth::mkdir_p(root + "/memory/berth/c1", 0755, nullptr);
  berth::write_file(root + "/memory/berth/c1/memory.memsw.limit_in_bytes", "max", nullptr);
  berth::Spec s;
  s.id = "c1";
  s.cgroup_parent = "berth";
  s.cgroup_root = root;
  s.cgroup_version = "v1";
  s.memory_bytes = 1 << 20;
  s.swap_bytes = 1 << 19;
  s.cpu_millis = 500;
  auto cg = berth::make_cgroup(s);
  berth::Error e;
  int rc = cg->create(s, &e);
  std::string memsw = slurp(root + "/memory/berth/c1/memory.memsw.limit_in_bytes");
  std::string shares = slurp(root + "/cpu/berth/c1/cpu.shares");
  std::string deny = slurp(root + "/devices/berth/c1/devices.deny");
  std::string cmd = "rm -rf '" + root + "'";
  int ignored = ::system(cmd.c_str());
  (void)ignored;
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(memsw, std::to_string((1 << 20) + (1 << 19)));
  EXPECT_EQ(shares, "512");
  EXPECT_EQ(deny, "a");
}

// cli_util_test.cc: error text, signal names, /proc stat parsing and the OCI status rules.
#include <errno.h>
#include <signal.h>

#include "../src/lib/oci_config.h"
#include "../src/runtime-cli/cli_util.h"
#include "harness.h"

TEST(describe_error_names_step_path_and_errno) {
  EXPECT_EQ(berth::describe_error({EPERM, "mount proc", "/x/proc"}), "mount proc /x/proc: EPERM");
  EXPECT_EQ(berth::describe_error({ENOENT, "exec", ""}), "exec: ENOENT");
  EXPECT_EQ(berth::describe_error({EINVAL, berth::OCI_CONFIG_STEP, "process.args: is required"}),
            "config.json: process.args: is required");
  EXPECT_EQ(berth::describe_error({4095, "x", "y"}), "x y: E4095");
}

TEST(parse_signal_accepts_numbers_and_names) {
  EXPECT_EQ(berth::parse_signal("9"), SIGKILL);
  EXPECT_EQ(berth::parse_signal("KILL"), SIGKILL);
  EXPECT_EQ(berth::parse_signal("SIGTERM"), SIGTERM);
  EXPECT_EQ(berth::parse_signal("term"), SIGTERM);
  EXPECT_EQ(berth::parse_signal("SIGUSR1"), SIGUSR1);
  EXPECT_EQ(berth::parse_signal("0"), -1);
  EXPECT_EQ(berth::parse_signal("65"), -1);
  EXPECT_EQ(berth::parse_signal("NOPE"), -1);
  EXPECT_EQ(berth::parse_signal(""), -1);
}

TEST(parse_proc_stat_survives_odd_comm) {
  berth::ProcStat st;
  std::string text =
      "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
  EXPECT_TRUE(berth::parse_proc_stat(text, &st));
  EXPECT_EQ(st.state, 'S');
  EXPECT_EQ(st.start_ticks, 987654u);
  EXPECT_TRUE(!berth::parse_proc_stat("garbage", &st));
}

TEST(oci_status_rules) {
  berth::ProcStat alive{'S', 100};
  berth::ProcStat zombie{'Z', 100};
  EXPECT_EQ(std::string(berth::oci_status(true, alive, 100, true)), "created");
  EXPECT_EQ(std::string(berth::oci_status(true, alive, 100, false)), "running");
  EXPECT_EQ(std::string(berth::oci_status(true, zombie, 100, false)), "stopped");
  EXPECT_EQ(std::string(berth::oci_status(true, alive, 99, false)), "stopped");  // pid reused
  EXPECT_EQ(std::string(berth::oci_status(false, alive, 100, true)), "stopped");
}

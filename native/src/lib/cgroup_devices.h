// cgroup_devices.h: the device access a container gets (runc's default list), as v1
// devices.allow lines and as a v2 BPF_PROG_TYPE_CGROUP_DEVICE program.
#pragma once

#include <linux/bpf.h>

#include <string>
#include <vector>

#include "error.h"

namespace berth {

// DEVICE_WILDCARD stands for `*` in a rule's major or minor.
constexpr long DEVICE_WILDCARD = -1;

// DeviceRule allows one device class: type 'c' or 'b', major/minor (or DEVICE_WILDCARD) and
// access, a subset of "rwm".
struct DeviceRule {
  char type;
  long major;
  long minor;
  const char* access;
};

// default_device_rules lists what a container may use; everything else is denied: mknod of any
// node, and read/write of null, zero, full, random, urandom, tty, console, ptmx and its pts.
const std::vector<DeviceRule>& default_device_rules();

// device_rule_v1 renders a rule as a devices.allow line ("c 1:3 rwm", "c *:* m").
std::string device_rule_v1(const DeviceRule& rule);

// build_device_program assembles a cgroup device program that returns 1 (allow) for an access
// matched by one of rules and 0 (deny) otherwise.
std::vector<bpf_insn> build_device_program(const std::vector<DeviceRule>& rules);

// attach_device_program loads the program for rules and attaches it to the cgroup directory
// cgroup_fd (BPF_CGROUP_DEVICE, multi-attach so ancestors' programs still apply).
int attach_device_program(int cgroup_fd, const std::vector<DeviceRule>& rules, Error* e);

}  // namespace berth

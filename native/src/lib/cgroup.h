// cgroup.h: one interface for a container's cgroup, two backends (v1 legacy/hybrid, v2 unified),
// chosen once per container from the cgroup root's filesystem type.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "error.h"
#include "spec.h"

namespace berth {

// Cgroup is a container's cgroup: create with limits, place the init, read OOM, remove.
class Cgroup {
 public:
  virtual ~Cgroup() = default;
  // create makes the cgroup dir(s) (and missing parents) and writes the spec's limits.
  virtual int create(const Spec& spec, Error* e) = 0;
  // add_process moves pid into the cgroup (every controller hierarchy on v1).
  virtual int add_process(pid_t pid, Error* e) = 0;
  // oom_killed reports whether the kernel OOM killer fired inside this cgroup.
  virtual bool oom_killed() = 0;
  // destroy removes the cgroup dir(s), retrying briefly while exiting tasks still pin them.
  virtual int destroy(Error* e) = 0;
};

// cgroup_root returns the spec's root, else $BERTH_CGROUP_ROOT, else /sys/fs/cgroup.
std::string cgroup_root(const Spec& spec);

// make_cgroup picks the backend: the spec's cgroupVersion if set, else v2 when the root is a
// cgroup2 filesystem and v1 otherwise (legacy or hybrid).
std::unique_ptr<Cgroup> make_cgroup(const Spec& spec);

// make_cgroup_v1 builds the v1 backend rooted at root (one hierarchy per controller below it).
std::unique_ptr<Cgroup> make_cgroup_v1(const std::string& root, const std::string& rel);

// make_cgroup_v2 builds the v2 backend rooted at root (the unified hierarchy).
std::unique_ptr<Cgroup> make_cgroup_v2(const std::string& root, const std::string& rel);

// rmdir_retry removes a cgroup dir, retrying a bounded number of times on EBUSY.
int rmdir_retry(const std::string& path, Error* e);

// cpu_quota_us converts millicores to a CFS quota for a 100 ms period (kernel minimum 1 ms).
unsigned long long cpu_quota_us(unsigned long long cpu_millis);

// CPU_PERIOD_US is the CFS period berth uses for every container.
constexpr unsigned long long CPU_PERIOD_US = 100000;

// cpu_shares derives v1 cpu.shares from millicores like Kubernetes: 1024 per core, at least 2.
unsigned long long cpu_shares(unsigned long long cpu_millis);

// cpu_weight maps v1 shares [2, 262144] onto v2 cpu.weight [1, 10000] (the runc/Kubernetes formula).
unsigned long long cpu_weight(unsigned long long shares);

}  // namespace berth

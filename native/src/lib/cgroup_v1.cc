// cgroup_v1.cc: legacy/hybrid hierarchy, one directory per controller. cpuset is joined only
// when the spec pins cpus: a new cpuset cgroup starts with empty cpus/mems and refuses tasks
// until they are copied down from its parent, which costs writes at every level.
#include <errno.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "cgroup.h"
#include "cgroup_devices.h"
#include "fsutil.h"

namespace berth {

namespace {

constexpr const char* BASE_CONTROLLERS[] = {"memory", "cpu", "cpuacct", "pids", "devices"};
constexpr const char* CPUSET = "cpuset";

int write_num(const std::string& path, unsigned long long value, Error* e) {
  return write_file(path, std::to_string(value), e);
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

class CgroupV1 : public Cgroup {
 public:
  CgroupV1(std::string root, std::string rel) : root_(std::move(root)), rel_(std::move(rel)) {}

  int create(const Spec& spec, Error* e) override {
    for (const char* c : BASE_CONTROLLERS) {
      if (int rc = mkdir_p(dir(c), 0755, e); rc < 0) return rc;
    }
    if (int rc = set_memory(spec, e); rc < 0) return rc;
    if (spec.cpu_millis > 0) {
      std::string cpu = dir("cpu");
      if (int rc = write_num(cpu + "/cpu.cfs_period_us", CPU_PERIOD_US, e); rc < 0) return rc;
      if (int rc = write_num(cpu + "/cpu.cfs_quota_us", cpu_quota_us(spec.cpu_millis), e); rc < 0)
        return rc;
      if (int rc = write_num(cpu + "/cpu.shares", cpu_shares(spec.cpu_millis), e); rc < 0)
        return rc;
    }
    if (spec.pids > 0) {
      if (int rc = write_num(dir("pids") + "/pids.max", spec.pids, e); rc < 0) return rc;
    }
    if (int rc = set_devices(e); rc < 0) return rc;
    if (!spec.cpus.empty()) {
      if (int rc = set_cpuset(spec.cpus, e); rc < 0) return rc;
      use_cpuset_ = true;
    }
    return 0;
  }

  int add_process(pid_t pid, Error* e) override {
    std::string p = std::to_string(pid);
    for (const char* c : BASE_CONTROLLERS) {
      if (int rc = write_file(dir(c) + "/cgroup.procs", p, e); rc < 0) return rc;
    }
    if (use_cpuset_) return write_file(dir(CPUSET) + "/cgroup.procs", p, e);
    return 0;
  }

  bool oom_killed() override {
    // `oom_kill` in memory.oom_control exists since Linux 4.13; it counts kills in this cgroup.
    std::string text;
    if (read_file(dir("memory") + "/memory.oom_control", &text, nullptr) < 0) return false;
    size_t at = text.find("oom_kill ");
    return at != std::string::npos && std::strtoull(text.c_str() + at + 9, nullptr, 10) > 0;
  }

  int destroy(Error* e) override {
    int first = 0;
    auto remove = [&](const char* c) {
      int rc = rmdir_retry(dir(c), first < 0 ? nullptr : e);
      if (rc < 0 && first == 0) first = rc;
    };
    for (const char* c : BASE_CONTROLLERS) remove(c);
    // Also when this object did not create it: a re-adopting caller does not know the spec.
    remove(CPUSET);
    return first;
  }

 private:
  std::string dir(const char* controller) const { return root_ + "/" + controller + "/" + rel_; }

  int set_memory(const Spec& spec, Error* e) {
    if (spec.memory_bytes == 0) return 0;
    std::string mem = dir("memory");
    if (int rc = write_num(mem + "/memory.limit_in_bytes", spec.memory_bytes, e); rc < 0) return rc;
    // memsw exists only with swap accounting; without it there is nothing to limit here.
    std::string memsw = mem + "/memory.memsw.limit_in_bytes";
    if (::access(memsw.c_str(), F_OK) != 0) return 0;
    return write_num(memsw, spec.memory_bytes + spec.swap_bytes, e);
  }

  int set_devices(Error* e) {
    std::string devices = dir("devices");
    if (int rc = write_file(devices + "/devices.deny", "a", e); rc < 0) return rc;
    for (const DeviceRule& rule : default_device_rules()) {
      if (int rc = write_file(devices + "/devices.allow", device_rule_v1(rule), e); rc < 0)
        return rc;
    }
    return 0;
  }

  // set_cpuset creates each level of the cpuset path, copying cpus and mems down from its parent
  // where they are still empty, then pins the container's cpus.
  int set_cpuset(const std::string& cpus, Error* e) {
    std::string parent = root_ + "/" + CPUSET;
    std::string rest = rel_;
    while (!rest.empty()) {
      size_t slash = rest.find('/');
      std::string part = rest.substr(0, slash);
      rest = slash == std::string::npos ? "" : rest.substr(slash + 1);
      if (part.empty()) continue;
      std::string child = parent + "/" + part;
      if (int rc = mkdir_p(child, 0755, e); rc < 0) return rc;
      for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
        std::string mine;
        if (int rc = read_file(child + "/" + file, &mine, e); rc < 0) return rc;
        if (!trimmed(mine).empty()) continue;
        std::string theirs;
        if (int rc = read_file(parent + "/" + file, &theirs, e); rc < 0) return rc;
        if (int rc = write_file(child + "/" + file, trimmed(theirs), e); rc < 0) return rc;
      }
      parent = child;
    }
    return write_file(parent + "/cpuset.cpus", cpus, e);
  }

  std::string root_;
  std::string rel_;
  bool use_cpuset_ = false;
};

}  // namespace

std::unique_ptr<Cgroup> make_cgroup_v1(const std::string& root, const std::string& rel) {
  return std::make_unique<CgroupV1>(root, rel);
}

}  // namespace berth

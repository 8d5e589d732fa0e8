// cgroup_v1.cc: legacy/hybrid hierarchy, one directory per controller. cpuset is left alone
// (a new cpuset cgroup starts with empty cpus/mems and would refuse tasks).
#include <errno.h>
#include <unistd.h>

#include <string>

#include "cgroup.h"
#include "fsutil.h"

namespace berth {

namespace {

constexpr const char* CONTROLLERS[] = {"memory", "cpu", "cpuacct", "pids"};

class CgroupV1 : public Cgroup {
 public:
  CgroupV1(std::string root, std::string rel) : root_(std::move(root)), rel_(std::move(rel)) {}

  int create(const Spec& spec, Error* e) override {
    for (const char* c : CONTROLLERS) {
      if (int rc = mkdir_p(dir(c), 0755, e); rc < 0) return rc;
    }
    if (spec.memory_bytes > 0) {
      if (int rc = write_file(dir("memory") + "/memory.limit_in_bytes",
                              std::to_string(spec.memory_bytes), e); rc < 0) return rc;
    }
    if (spec.cpu_millis > 0) {
      if (int rc = write_file(dir("cpu") + "/cpu.cfs_period_us", std::to_string(CPU_PERIOD_US), e);
          rc < 0) return rc;
      if (int rc = write_file(dir("cpu") + "/cpu.cfs_quota_us",
                              std::to_string(cpu_quota_us(spec.cpu_millis)), e); rc < 0) return rc;
    }
    if (spec.pids > 0) {
      if (int rc = write_file(dir("pids") + "/pids.max", std::to_string(spec.pids), e); rc < 0)
        return rc;
    }
    return 0;
  }

  int add_process(pid_t pid, Error* e) override {
    std::string p = std::to_string(pid);
    for (const char* c : CONTROLLERS) {
      if (int rc = write_file(dir(c) + "/cgroup.procs", p, e); rc < 0) return rc;
    }
    return 0;
  }

  bool oom_killed() override {
    std::string text;
    if (read_file(dir("memory") + "/memory.oom_control", &text, nullptr) < 0) return false;
    size_t at = text.find("oom_kill ");
    return at != std::string::npos && std::strtoull(text.c_str() + at + 9, nullptr, 10) > 0;
  }

  int destroy(Error* e) override {
    int first = 0;
    for (const char* c : CONTROLLERS) {
      int rc = rmdir_retry(dir(c), first < 0 ? nullptr : e);
      if (rc < 0 && first == 0) first = rc;
    }
    return first;
  }

 private:
  std::string dir(const char* controller) const { return root_ + "/" + controller + "/" + rel_; }

  std::string root_;
  std::string rel_;
};

}  // namespace

std::unique_ptr<Cgroup> make_cgroup_v1(const std::string& root, const std::string& rel) {
  return std::make_unique<CgroupV1>(root, rel);
}

}  // namespace berth

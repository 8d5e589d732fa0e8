// cgroup_v2.cc: unified hierarchy. Controllers must be enabled in every ancestor's
// cgroup.subtree_control before the container's own interface files exist.
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "cgroup.h"
#include "fsutil.h"

namespace berth {

namespace {

constexpr const char* CONTROLLERS = "+cpu +memory +pids";

class CgroupV2 : public Cgroup {
 public:
  CgroupV2(std::string root, std::string rel) : root_(std::move(root)), rel_(std::move(rel)) {}

  int create(const Spec& spec, Error* e) override {
    std::string dir = root_;
    std::string rest = rel_;
    // Walk root → parent, creating each level and delegating controllers to its children.
    while (!rest.empty()) {
      enable_controllers(dir);
      size_t slash = rest.find('/');
      std::string part = rest.substr(0, slash);
      rest = slash == std::string::npos ? "" : rest.substr(slash + 1);
      if (part.empty()) continue;
      dir += "/" + part;
      if (::mkdir(dir.c_str(), 0755) < 0 && errno != EEXIST) return fail(e, errno, "mkdir", dir);
    }
    if (spec.memory_bytes > 0) {
      if (int rc = write_file(path() + "/memory.max", std::to_string(spec.memory_bytes), e); rc < 0)
        return rc;
    }
    if (spec.cpu_millis > 0) {
      std::string max = std::to_string(cpu_quota_us(spec.cpu_millis)) + " " +
                        std::to_string(CPU_PERIOD_US);
      if (int rc = write_file(path() + "/cpu.max", max, e); rc < 0) return rc;
    }
    if (spec.pids > 0) {
      if (int rc = write_file(path() + "/pids.max", std::to_string(spec.pids), e); rc < 0)
        return rc;
    }
    return 0;
  }

  int add_process(pid_t pid, Error* e) override {
    return write_file(path() + "/cgroup.procs", std::to_string(pid), e);
  }

  bool oom_killed() override {
    std::string text;
    if (read_file(path() + "/memory.events", &text, nullptr) < 0) return false;
    size_t at = text.find("oom_kill ");
    return at != std::string::npos && std::strtoull(text.c_str() + at + 9, nullptr, 10) > 0;
  }

  int destroy(Error* e) override { return rmdir_retry(path(), e); }

 private:
  std::string path() const { return root_ + "/" + rel_; }

  static void enable_controllers(const std::string& dir) {
    std::string file = dir + "/cgroup.subtree_control";
    if (write_file(file, CONTROLLERS, nullptr) == 0) return;
    // One unavailable controller fails the whole write; enable the others one by one and let
    // the limit write for the missing one report the precise failure.
    for (const char* c : {"+cpu", "+memory", "+pids"}) write_file(file, c, nullptr);
  }

  std::string root_;
  std::string rel_;
};

}  // namespace

std::unique_ptr<Cgroup> make_cgroup_v2(const std::string& root, const std::string& rel) {
  return std::make_unique<CgroupV2>(root, rel);
}

}  // namespace berth

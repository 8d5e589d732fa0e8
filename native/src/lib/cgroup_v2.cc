// cgroup_v2.cc: unified hierarchy. Controllers must be enabled in every ancestor's
// cgroup.subtree_control before the container's own interface files exist.
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <linux/magic.h>

#include <string>
#include <vector>

#include "cgroup.h"
#include "cgroup_devices.h"
#include "fsutil.h"
#include "unique_fd.h"

namespace berth {

namespace {

int write_num(const std::string& path, unsigned long long value, Error* e) {
  return write_file(path, std::to_string(value), e);
}

// has_word tells whether a space-separated controller list names c (with or without a '+').
bool has_word(const std::string& list, const std::string& c) {
  size_t pos = 0;
  while (pos < list.size()) {
    size_t end = list.find_first_of(" \n", pos);
    if (end == std::string::npos) end = list.size();
    std::string w = list.substr(pos, end - pos);
    if (w == c || w == "+" + c) return true;
    pos = end + 1;
  }
  return false;
}

class CgroupV2 : public Cgroup {
 public:
  CgroupV2(std::string root, std::string rel) : root_(std::move(root)), rel_(std::move(rel)) {}

  int create(const Spec& spec, Error* e) override {
    std::vector<std::string> controllers = {"cpu", "memory", "pids"};
    if (!spec.cpus.empty()) controllers.push_back("cpuset");
    std::string dir = root_;
    std::string parent = root_;
    std::string rest = rel_;
    // Walk root → parent, creating each level and delegating controllers to its children.
    while (!rest.empty()) {
      enable_controllers(dir, controllers);
      size_t slash = rest.find('/');
      std::string part = rest.substr(0, slash);
      rest = slash == std::string::npos ? "" : rest.substr(slash + 1);
      if (part.empty()) continue;
      parent = dir;
      dir += "/" + part;
      if (::mkdir(dir.c_str(), 0755) < 0 && errno != EEXIST) return fail(e, errno, "mkdir", dir);
    }
    std::string delegated;
    read_file(parent + "/cgroup.subtree_control", &delegated, nullptr);
    if (int rc = set_memory(spec, has_word(delegated, "memory"), e); rc < 0) return rc;
    if (spec.cpu_millis > 0) {
      std::string max = std::to_string(cpu_quota_us(spec.cpu_millis)) + " " +
                        std::to_string(CPU_PERIOD_US);
      if (int rc = write_file(path() + "/cpu.max", max, e); rc < 0) return rc;
      if (int rc = write_num(path() + "/cpu.weight", cpu_weight(cpu_shares(spec.cpu_millis)), e);
          rc < 0) return rc;
    }
    if (spec.pids > 0) {
      if (int rc = write_num(path() + "/pids.max", spec.pids, e); rc < 0) return rc;
    }
    if (!spec.cpus.empty()) {
      if (int rc = write_file(path() + "/cpuset.cpus", spec.cpus, e); rc < 0) return rc;
    }
    return set_devices(e);
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

  int set_memory(const Spec& spec, bool memory_delegated, Error* e) {
    if (memory_delegated) {
      // One OOM kill takes the whole container down, not one process of a half-working set.
      if (int rc = write_file(path() + "/memory.oom.group", "1", e); rc < 0) return rc;
    }
    if (spec.memory_bytes == 0) return 0;
    if (int rc = write_num(path() + "/memory.max", spec.memory_bytes, e); rc < 0) return rc;
    // memory.swap.max is absent without swap accounting: fine unless swap was asked for.
    int rc = write_num(path() + "/memory.swap.max", spec.swap_bytes, e);
    return rc < 0 && spec.swap_bytes > 0 ? rc : 0;
  }

  // set_devices attaches the device program, but only to a real cgroup2 directory: a test's
  // fake cgroupfs is a plain directory the kernel cannot attach programs to.
  int set_devices(Error* e) {
    unique_fd fd(::open(path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) return fail(e, errno, "open", path());
    struct statfs st {};
    if (::fstatfs(fd.get(), &st) < 0) return fail(e, errno, "statfs", path());
    if (st.f_type != CGROUP2_SUPER_MAGIC) return 0;
    if (int rc = attach_device_program(fd.get(), default_device_rules(), e); rc < 0) {
      if (e != nullptr) e->path = path();
      return rc;
    }
    return 0;
  }

  static void enable_controllers(const std::string& dir, const std::vector<std::string>& wanted) {
    std::string file = dir + "/cgroup.subtree_control";
    std::string all;
    for (const std::string& c : wanted) all += (all.empty() ? "+" : " +") + c;
    if (write_file(file, all, nullptr) == 0) return;
    // One unavailable controller fails the whole write; enable the others one by one and let
    // the limit write for the missing one report the precise failure.
    for (const std::string& c : wanted) write_file(file, "+" + c, nullptr);
  }

  std::string root_;
  std::string rel_;
};

}  // namespace

std::unique_ptr<Cgroup> make_cgroup_v2(const std::string& root, const std::string& rel) {
  return std::make_unique<CgroupV2>(root, rel);
}

}  // namespace berth

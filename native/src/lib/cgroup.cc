#include "cgroup.h"

#include <errno.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>

#include <linux/magic.h>

namespace berth {

namespace {
constexpr int RMDIR_ATTEMPTS = 50;
constexpr long RMDIR_BACKOFF_START_NS = 200 * 1000;
constexpr long RMDIR_BACKOFF_MAX_NS = 20 * 1000 * 1000;
}  // namespace

std::string cgroup_root(const Spec& spec) {
  if (!spec.cgroup_root.empty()) return spec.cgroup_root;
  const char* env = std::getenv("BERTH_CGROUP_ROOT");
  if (env != nullptr && *env != '\0') return env;
  return "/sys/fs/cgroup";
}

std::unique_ptr<Cgroup> make_cgroup(const Spec& spec) {
  std::string root = cgroup_root(spec);
  std::string rel = spec.cgroup_parent.empty() ? spec.id : spec.cgroup_parent + "/" + spec.id;
  bool v2 = false;
  if (spec.cgroup_version == "v2") {
    v2 = true;
  } else if (spec.cgroup_version.empty()) {
    struct statfs st {};
    v2 = ::statfs(root.c_str(), &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC;
  }
  return v2 ? make_cgroup_v2(root, rel) : make_cgroup_v1(root, rel);
}

int rmdir_retry(const std::string& path, Error* e) {
  long backoff_ns = RMDIR_BACKOFF_START_NS;
  for (int attempt = 0;; attempt++) {
    if (::rmdir(path.c_str()) == 0 || errno == ENOENT) return 0;
    // EBUSY means tasks are still leaving the cgroup; anything else will not get better.
    if (errno != EBUSY || attempt + 1 >= RMDIR_ATTEMPTS) return fail(e, errno, "rmdir", path);
    struct timespec ts {0, backoff_ns};
    ::nanosleep(&ts, nullptr);
    backoff_ns = backoff_ns * 2 > RMDIR_BACKOFF_MAX_NS ? RMDIR_BACKOFF_MAX_NS : backoff_ns * 2;
  }
}

unsigned long long cpu_quota_us(unsigned long long cpu_millis) {
  unsigned long long quota = cpu_millis * CPU_PERIOD_US / 1000;
  return quota < 1000 ? 1000 : quota;
}

unsigned long long cpu_shares(unsigned long long cpu_millis) {
  unsigned long long shares = cpu_millis * 1024 / 1000;
  return shares < 2 ? 2 : shares;
}

unsigned long long cpu_weight(unsigned long long shares) {
  if (shares < 2) shares = 2;
  if (shares > 262144) shares = 262144;
  return 1 + ((shares - 2) * 9999) / 262142;
}

}  // namespace berth

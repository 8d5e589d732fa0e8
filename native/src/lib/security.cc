#include "security.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "spec.h"

namespace berth {

namespace {

// Indexed by capability number (linux/capability.h), without the CAP_ prefix.
constexpr const char* CAP_NAMES[] = {
    "CHOWN",           "DAC_OVERRIDE",   "DAC_READ_SEARCH", "FOWNER",        "FSETID",
    "KILL",            "SETGID",         "SETUID",          "SETPCAP",       "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN",       "NET_RAW",       "IPC_LOCK",
    "IPC_OWNER",       "SYS_MODULE",     "SYS_RAWIO",       "SYS_CHROOT",    "SYS_PTRACE",
    "SYS_PACCT",       "SYS_ADMIN",      "SYS_BOOT",        "SYS_NICE",      "SYS_RESOURCE",
    "SYS_TIME",        "SYS_TTY_CONFIG", "MKNOD",           "LEASE",         "AUDIT_WRITE",
    "AUDIT_CONTROL",   "SETFCAP",        "MAC_OVERRIDE",    "MAC_ADMIN",     "SYSLOG",
    "WAKE_ALARM",      "BLOCK_SUSPEND",  "AUDIT_READ",      "PERFMON",       "BPF",
    "CHECKPOINT_RESTORE"};
constexpr int CAP_COUNT = sizeof CAP_NAMES / sizeof CAP_NAMES[0];

constexpr uint64_t bit(int cap) { return uint64_t{1} << cap; }

struct RlimitName {
  const char* name;
  int resource;
};
constexpr RlimitName RLIMIT_NAMES[] = {
    {"CPU", RLIMIT_CPU},         {"FSIZE", RLIMIT_FSIZE},     {"DATA", RLIMIT_DATA},
    {"STACK", RLIMIT_STACK},     {"CORE", RLIMIT_CORE},       {"RSS", RLIMIT_RSS},
    {"NPROC", RLIMIT_NPROC},     {"NOFILE", RLIMIT_NOFILE},   {"MEMLOCK", RLIMIT_MEMLOCK},
    {"AS", RLIMIT_AS},           {"LOCKS", RLIMIT_LOCKS},     {"SIGPENDING", RLIMIT_SIGPENDING},
    {"MSGQUEUE", RLIMIT_MSGQUEUE}, {"NICE", RLIMIT_NICE},     {"RTPRIO", RLIMIT_RTPRIO},
    {"RTTIME", RLIMIT_RTTIME}};

const char* strip_prefix(const std::string& name, const char* prefix) {
  size_t n = ::strlen(prefix);
  return ::strncasecmp(name.c_str(), prefix, n) == 0 ? name.c_str() + n : name.c_str();
}

int apply_cap_list(const std::vector<std::string>& names, bool add, uint64_t* set, Error* e) {
  for (const std::string& name : names) {
    if (::strcasecmp(name.c_str(), "ALL") == 0) {
      *set = add ? bit(CAP_COUNT) - 1 : 0;
      continue;
    }
    int cap = cap_from_name(name);
    if (cap < 0) return fail(e, EINVAL, add ? "capAdd" : "capDrop", name);
    *set = add ? (*set | bit(cap)) : (*set & ~bit(cap));
  }
  return 0;
}

// drop_bounding removes every capability not in keep from the bounding set; the loop ends at the
// first number the running kernel does not know.
int drop_bounding(uint64_t keep, Error* e) {
  for (int cap = 0; cap < 64; cap++) {
    if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0) break;
    if ((keep & bit(cap)) != 0) continue;
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) return fail(e, errno, "drop bounding cap", cap_name(cap));
  }
  return 0;
}

int set_caps(const CapSets& caps, Error* e) {
  struct __user_cap_header_struct header {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] {};
  for (int i = 0; i < 2; i++) {
    data[i].effective = static_cast<uint32_t>(caps.effective >> (32 * i));
    data[i].permitted = static_cast<uint32_t>(caps.permitted >> (32 * i));
    data[i].inheritable = static_cast<uint32_t>(caps.inheritable >> (32 * i));
  }
  if (::syscall(SYS_capset, &header, data) < 0) return fail(e, errno, "capset", "");
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
    return fail(e, errno, "clear ambient caps", "");
  return 0;
}

}  // namespace

const uint64_t DEFAULT_CAPS = bit(CAP_CHOWN) | bit(CAP_DAC_OVERRIDE) | bit(CAP_FSETID) |
                              bit(CAP_FOWNER) | bit(CAP_MKNOD) | bit(CAP_NET_RAW) |
                              bit(CAP_SETGID) | bit(CAP_SETUID) | bit(CAP_SETFCAP) |
                              bit(CAP_SETPCAP) | bit(CAP_NET_BIND_SERVICE) | bit(CAP_SYS_CHROOT) |
                              bit(CAP_KILL) | bit(CAP_AUDIT_WRITE);

int cap_from_name(const std::string& name) {
  const char* bare = strip_prefix(name, "CAP_");
  for (int i = 0; i < CAP_COUNT; i++) {
    if (::strcasecmp(bare, CAP_NAMES[i]) == 0) return i;
  }
  return -1;
}

std::string cap_name(int n) {
  if (n < 0 || n >= CAP_COUNT) return "";
  return std::string("CAP_") + CAP_NAMES[n];
}

int resolve_caps(const std::vector<std::string>& add, const std::vector<std::string>& drop,
                 uint32_t uid, CapSets* out, Error* e) {
  uint64_t set = DEFAULT_CAPS;
  // Drop from the defaults first, then add: `capDrop: [ALL], capAdd: [NET_BIND_SERVICE]` (what
  // the restricted admission level asks for) must keep the one capability, as Docker does.
  if (int rc = apply_cap_list(drop, false, &set, e); rc < 0) return rc;
  if (int rc = apply_cap_list(add, true, &set, e); rc < 0) return rc;
  out->bounding = set;
  out->permitted = uid == 0 ? set : 0;
  out->effective = out->permitted;
  out->inheritable = 0;
  return 0;
}

int rlimit_from_name(const std::string& name) {
  const char* bare = strip_prefix(name, "RLIMIT_");
  for (const RlimitName& r : RLIMIT_NAMES) {
    if (::strcasecmp(bare, r.name) == 0) return r.resource;
  }
  return -1;
}

int apply_rlimits(pid_t pid, const std::vector<Rlimit>& limits, Error* e) {
  bool nofile = false;
  for (const Rlimit& l : limits) {
    struct rlimit64 r {l.soft, l.hard};
    if (::prlimit64(pid, static_cast<__rlimit_resource>(l.resource), &r, nullptr) < 0)
      return fail(e, errno, "prlimit", std::to_string(l.resource));
    nofile = nofile || l.resource == RLIMIT_NOFILE;
  }
  if (nofile) return 0;
  struct rlimit64 r {DEFAULT_NOFILE, DEFAULT_NOFILE};
  if (::prlimit64(pid, RLIMIT_NOFILE, &r, nullptr) == 0) return 0;
  // Without CAP_SYS_RESOURCE the default cannot exceed our own hard limit: take that instead.
  if (errno != EPERM || ::prlimit64(0, RLIMIT_NOFILE, nullptr, &r) < 0) return fail(e, errno, "prlimit", "NOFILE");
  r.rlim_cur = r.rlim_max;
  if (::prlimit64(pid, RLIMIT_NOFILE, &r, nullptr) < 0) return fail(e, errno, "prlimit", "NOFILE");
  return 0;
}

int drop_privileges(const Spec& spec, const CapSets& caps, Error* e) {
  if (int rc = drop_bounding(caps.bounding, e); rc < 0) return rc;
  // Keep the permitted set across setuid to a non-zero uid; capset below trims it to caps.
  if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) return fail(e, errno, "set keepcaps", "");
  std::vector<gid_t> groups(spec.groups.begin(), spec.groups.end());
  if (::setgroups(groups.size(), groups.empty() ? nullptr : groups.data()) < 0)
    return fail(e, errno, "setgroups", "");
  if (::setresgid(spec.gid, spec.gid, spec.gid) < 0) return fail(e, errno, "setgid", std::to_string(spec.gid));
  if (::setresuid(spec.uid, spec.uid, spec.uid) < 0) return fail(e, errno, "setuid", std::to_string(spec.uid));
  if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) return fail(e, errno, "clear keepcaps", "");
  return set_caps(caps, e);
}

}  // namespace berth

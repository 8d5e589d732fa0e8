// security.h: the init's privileges: capabilities, identity (uid, gid, groups) and rlimits.
//
// Defaults are Docker's: 14 capabilities in the bounding set, kept permitted/effective for root
// only, nothing inheritable or ambient, and RLIMIT_NOFILE at 1048576.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "error.h"

namespace berth {

struct Spec;

// CapSets are capability masks (bit n = capability n) the init ends up with before execve.
struct CapSets {
  uint64_t bounding = 0;
  uint64_t permitted = 0;
  uint64_t effective = 0;
  uint64_t inheritable = 0;
};

// Rlimit is one resource limit; RLIM_INFINITY (~0) is "unlimited".
struct Rlimit {
  int resource = 0;
  uint64_t soft = 0;
  uint64_t hard = 0;
};

// DEFAULT_CAPS is Docker's default bounding set (CHOWN, DAC_OVERRIDE, FSETID, FOWNER, MKNOD,
// NET_RAW, SETGID, SETUID, SETFCAP, SETPCAP, NET_BIND_SERVICE, SYS_CHROOT, KILL, AUDIT_WRITE).
extern const uint64_t DEFAULT_CAPS;

// DEFAULT_NOFILE is RLIMIT_NOFILE (soft and hard) when the spec sets none, as Docker's default.
constexpr uint64_t DEFAULT_NOFILE = 1048576;

// cap_from_name maps "CAP_NET_ADMIN", "net_admin" or "NET_ADMIN" to its number; -1 if unknown.
int cap_from_name(const std::string& name);

// cap_name is the canonical "CAP_X" name of cap n, or "" when n is not a known capability.
std::string cap_name(int n);

// resolve_caps removes drop from DEFAULT_CAPS, then adds add (each a cap name or "ALL"), so
// an added capability survives dropping ALL, as in Docker; root keeps the result permitted/effective, any other uid gets none. An unknown name
// fails with EINVAL and the name.
int resolve_caps(const std::vector<std::string>& add, const std::vector<std::string>& drop,
                 uint32_t uid, CapSets* out, Error* e);

// rlimit_from_name maps "NOFILE" or "RLIMIT_NOFILE" (any case) to its resource; -1 if unknown.
int rlimit_from_name(const std::string& name);

// apply_rlimits sets the spec's rlimits (plus the NOFILE default) on pid from outside, with the
// caller's privileges, so a user-namespaced init can get limits above its parent's hard ones.
// Without CAP_SYS_RESOURCE the NOFILE default falls back to the caller's own hard limit.
int apply_rlimits(pid_t pid, const std::vector<Rlimit>& limits, Error* e);

// drop_privileges switches the calling init to the spec's uid, gid and groups and leaves it with
// exactly caps, in runc's order: bounding set first (it needs CAP_SETPCAP), keep-caps across
// setuid, then capset and a cleared ambient set.
int drop_privileges(const Spec& spec, const CapSets& caps, Error* e);

}  // namespace berth

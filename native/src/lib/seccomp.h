// seccomp.h: berth's default seccomp filter, a hand-built classic BPF program.
//
// It allows everything except what Docker's default profile denies a container without the
// matching capability: mount, kexec, module loading, bpf, perf_event_open, keyrings, user and
// other namespaces, clock setting, swap, reboot, raw I/O ports, and personality changes other
// than the harmless ones. Denied calls fail with EPERM (clone3 with ENOSYS, so libc falls back
// to clone, whose flags the filter can inspect). A foreign architecture or the x32 ABI kills
// the process. Built once in the shim and installed by the init right before exec; no library.
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <vector>

#include "error.h"

namespace berth {

// SeccompProgram is a ready-to-load filter.
struct SeccompProgram {
  std::vector<struct sock_filter> insns;
};

// build_default_seccomp builds the default filter for a container whose bounding set is caps:
// a call Docker allows with a capability (e.g. CAP_SYS_ADMIN: mount, setns, unshare) is allowed
// when caps holds it.
void build_default_seccomp(uint64_t caps, SeccompProgram* out);

// install_seccomp sets no_new_privs and loads prog into the calling thread (TSYNC not needed:
// the init is single-threaded). An empty program only sets no_new_privs.
int install_seccomp(const SeccompProgram& prog, Error* e);

}  // namespace berth

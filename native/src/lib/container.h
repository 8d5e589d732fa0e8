// container.h: creating a container's init process (namespaces, rootfs, identity, exec).
#pragma once

#include <sys/types.h>

#include <string>

#include "cgroup.h"
#include "error.h"
#include "spec.h"
#include "unique_fd.h"

namespace berth {

// Launched is a started container: its host PID and the read ends of its stdout/stderr pipes.
struct Launched {
  pid_t pid = -1;
  unique_fd stdout_r;
  unique_fd stderr_r;
};

// launch_container clones the init into new pid/mount/uts/ipc/net namespaces, creates cg with
// the spec's limits and places the init in it, lets it build its rootfs under dir (upper/,
// work/, rootfs/) and exec the spec's args.
// It returns once the exec succeeded, or with the child's own errno/step/path if it failed
// (the child is then reaped). The caller must have SIGCHLD blocked if it uses a signalfd.
int launch_container(const Spec& spec, const std::string& dir, Cgroup& cg, Launched* out,
                     Error* e);

}  // namespace berth

// container.h: creating a container's init process (namespaces, rootfs, identity, exec).
#pragma once

#include <sys/types.h>

#include <string>

#include "cgroup.h"
#include "error.h"
#include "spec.h"
#include "unique_fd.h"

namespace berth {

// Launched is a started container: its host PID, a pidfd for it (opened while it was the
// caller's unreaped child, so it can never name another process), the read ends of its
// stdout/stderr pipes and, with an init (Spec::init), the read end of the init's status pipe.
struct Launched {
  pid_t pid = -1;
  unique_fd pidfd;
  unique_fd stdout_r;
  unique_fd stderr_r;
  unique_fd init_status_r;
};

// LaunchOptions change how the init is handed over; the shim uses the defaults (no gate).
struct LaunchOptions {
  // exec_fifo, when set, is an existing fifo the init opens for writing right before execve,
  // which blocks until `start` opens it for reading (the OCI create/start gate). The init opens
  // it through an O_PATH fd taken before pivot_root. launch_container then returns once setup
  // succeeded ("created"); an exec failure after start becomes the container's exit code 127.
  std::string exec_fifo;
  // inherit_stdio keeps the caller's fds 0-2 for the container instead of /dev/null and the
  // stdout/stderr pipes (Launched::stdout_r/stderr_r stay empty).
  bool inherit_stdio = false;
  // die_with_parent has the kernel SIGKILL the init (and so the whole container) when the
  // caller dies: a container must not outlive the shim that alone may signal it. berth-runtime
  // leaves it off: its `create` exits while the container runs on.
  bool die_with_parent = false;
};

// launch_container clones the init into new pid/mount/uts/ipc/net namespaces, creates cg with
// the spec's limits and places the init in it, lets it build its rootfs under dir (upper/,
// work/, rootfs/) and exec the spec's args, or with Spec::init exec berth-init, which runs the
// args as its child (init.h); an exec failure of the args is reported the same way in both.
// It returns once the exec succeeded, or with the child's own errno/step/path if it failed
// (the child is then reaped). The caller must have SIGCHLD blocked if it uses a signalfd.
int launch_container(const Spec& spec, const std::string& dir, Cgroup& cg, Launched* out,
                     Error* e, const LaunchOptions& opts = LaunchOptions());

}  // namespace berth

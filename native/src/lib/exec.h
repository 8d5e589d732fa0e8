// exec.h: running an extra process inside a running container (`berth exec`, probes).
//
// The caller (berth-shim --exec, or berth-runtime exec) joins the container's namespaces itself,
// then forks: the child is born inside the container's pid namespace, is moved into the
// container's cgroups before it runs anything, takes the container's identity and security
// settings, and execs; the caller waits with a deadline.
//
// Request wire format (parse_exec_request; encoder: encodeExecRequest in
// agent/runtime/native-exec.ts): the same `key=value` lines as spec.h — `arg` (repeated),
// `env` (repeated, KEY=VALUE, overriding the container's), `cwd`, `timeoutMs`, and for an
// interactive exec (exec_io.h) `tty` (0|1) with the first window size `rows`, `cols`.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "error.h"
#include "execvp.h"
#include "seccomp.h"
#include "security.h"
#include "spec.h"
#include "unique_fd.h"

namespace berth {

// ExecRequest is one command to run in a container.
struct ExecRequest {
  std::vector<std::string> args;
  std::vector<std::string> env;  // KEY=VALUE, added to (and overriding) the container's env
  std::string cwd;               // empty: the container's cwd
  uint64_t timeout_ms = 0;       // 0: no deadline
  bool tty = false;              // interactive exec only: run on a pty allocated in the container
  uint16_t rows = 0;             // first window size of the pty (0: leave the kernel's default)
  uint16_t cols = 0;
};

// ExecStdio is what the command's fds 0-2 become; -1 keeps the caller's. With tty, in, out and
// err are the pty's slave, which becomes the command's controlling terminal.
struct ExecStdio {
  int in = -1;
  int out = -1;
  int err = -1;
  bool tty = false;
  // new_session makes the command a session and process-group leader, so a signal can reach
  // everything it started (kill(-pid)); always on with tty, which needs it for TIOCSCTTY.
  bool new_session = false;
  // die_with_parent SIGKILLs the command when its helper dies, so an abandoned interactive
  // exec does not run on inside the container with nobody holding its pipes.
  bool die_with_parent = false;
};

// ExecContext is a joined container: its cgroup.procs files (opened from the host's view) and
// the privileges its processes run with, resolved as the shim resolves them for the init.
struct ExecContext {
  const Spec* container = nullptr;
  std::vector<unique_fd> cgroup_procs;
  CapSets caps;
  SeccompProgram seccomp;
};

// ExecChild is a started command: its host pid, a pidfd for polling its exit, and the read end
// of the pipe on which its setup failure (before exec) is reported.
struct ExecChild {
  pid_t pid = -1;
  unique_fd pidfd;
  unique_fd err_r;
};

// ExecOutcome is how the command ended: exit_code is 128+signal when killed by a signal.
struct ExecOutcome {
  int exit_code = 0;
  int signal = 0;
  bool timed_out = false;
};

// EXEC_NOT_FOUND_EXIT is the exit code of a command that could not be executed (as in sh).
constexpr int EXEC_NOT_FOUND_EXIT = 127;

// parse_exec_request parses the wire format; a malformed line fails with EINVAL and the key.
int parse_exec_request(const std::string& text, ExecRequest* out, Error* e);

// merge_env overlays extra KEY=VALUE entries on base, keeping base's order.
std::vector<std::string> merge_env(const std::vector<std::string>& base,
                                   const std::vector<std::string>& extra);

// open_cgroups opens cgroup.procs of every cgroup init_pid is in (v1 hierarchies and the v2 one),
// as the host sees them under the spec's cgroup root. Call before joining the container's
// cgroup and mount namespaces; hierarchies not mounted under the root are skipped.
int open_cgroups(const Spec& container, pid_t init_pid, std::vector<unique_fd>* procs, Error* e);

// attach_cgroups writes pid into each cgroup.procs opened by open_cgroups.
int attach_cgroups(const std::vector<unique_fd>& procs, pid_t pid, Error* e);

// join_namespaces enters init_pid's user (when different), ipc, uts, net, cgroup, pid and mount
// namespaces. All namespace fds are opened before the first setns, since /proc changes meaning
// once the mount namespace is entered. The pid namespace applies to children forked afterwards.
int join_namespaces(pid_t init_pid, Error* e);

// join_container opens init_pid's cgroups, resolves the container's privileges and joins its
// namespaces (the caller's mount namespace, root and cwd become the container's: a path opened
// afterwards, such as /dev/ptmx, is the container's). Single-threaded callers only.
int join_container(const Spec& container, pid_t init_pid, ExecContext* ctx, Error* e);

// spawn_exec forks the command in a joined container with stdio, moves it into the container's
// cgroups and rlimits before it runs anything, then lets it exec.
int spawn_exec(const ExecContext& ctx, const ExecRequest& req, const ExecStdio& stdio,
               ExecChild* out, Error* e);

// exec_outcome turns a wait status into an outcome (exit_code 128+signal when killed).
void exec_outcome(int wait_status, ExecOutcome* out);

// finish_exec reads the setup failure the child reported, if any, once it has exited: a failed
// step before the exec is returned as an error (the wait status then means nothing).
int finish_exec(ExecChild* child, Error* e);

// exec_in_container joins init_pid's cgroups and namespaces, forks the command with the
// container's user, groups, env, cwd, rlimits, capabilities, no_new_privs and seccomp filter, stdio inherited from the caller
// (stdin should be /dev/null), and waits for it, killing it with SIGKILL at the deadline.
// A command that cannot be executed exits EXEC_NOT_FOUND_EXIT with `exec NAME: ERRNO` on
// stderr; a failed setup step before the exec is returned as an error instead.
// The caller must be single-threaded (setns into pid/mount/user namespaces requires it).
int exec_in_container(const Spec& container, pid_t init_pid, const ExecRequest& req,
                      ExecOutcome* out, Error* e);

}  // namespace berth

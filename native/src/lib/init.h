// init.h: berth-init, the container's PID 1 when its spec asks for one (Docker's --init, tini).
//
// A plain program as PID 1 of a pid namespace gets no default signal actions (a SIGTERM to
// `sleep` is dropped, so a stop waits out its whole grace period) and never reaps the orphans
// reparented to it (they stay zombies). berth-init forks the container's command, forwards every
// signal it can catch to it, reaps whatever is reparented to it, and exits once the command has
// exited; the kernel then kills what is left in the namespace.
//
// Contract with the shim, two inherited descriptors (either may be absent when run by hand):
//   INIT_ERROR_FD   the launch error pipe. A command that cannot be executed writes
//                   `errno\tstep\tpath` there and exits 127, and launch_container reports it as
//                   the start error, as without an init; a successful exec closes it.
//   INIT_STATUS_FD  the status pipe. Just before exiting the init writes the command's raw wait
//                   status as one decimal line, so the exit the shim records (code, signal) is
//                   the command's own and not "the init exited 143".
#pragma once

#include <string>
#include <vector>

namespace berth {

// INIT_ERROR_FD / INIT_STATUS_FD are the descriptor numbers berth-init finds its pipes at.
constexpr int INIT_ERROR_FD = 3;
constexpr int INIT_STATUS_FD = 4;

// init_exit_code is the exit code for a wait status: the code, or 128 + signal (as a shell does).
int init_exit_code(int wait_status);

// parse_init_status reads the status line berth-init wrote; false when it is not one.
bool parse_init_status(const std::string& text, int* wait_status);

// run_init runs args (PATH searched in env) as the init's child and supervises it as described
// above; it returns the exit code for the init (init_exit_code of the command's status, or 127
// when the command could not be started). Outside PID 1 it makes itself a child subreaper, so it
// also reaps orphans when run by hand or in tests.
int run_init(const std::vector<std::string>& args, const std::vector<std::string>& env);

}  // namespace berth

// cli_util.h: the pure helpers of berth-runtime (error text, signal names, state status), kept
// apart from main.cc so the C++ unit tests can check them without running containers.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "../lib/error.h"

namespace berth {

// describe_error renders an Error for people: `mount proc /x/proc: EPERM`, or for config.json
// errors `config.json: process.args: must name a program` (the errno says nothing there).
std::string describe_error(const Error& e);

// parse_signal accepts a number ("9"), a name ("KILL") or a SIG-prefixed name ("SIGTERM");
// it returns the signal number, or -1 when unknown.
int parse_signal(const std::string& text);

// ProcStat is what /proc/<pid>/stat says about liveness.
struct ProcStat {
  char state = 0;           // R, S, D, Z, X, ...
  uint64_t start_ticks = 0;  // field 22, to tell a reused pid from ours
};

// parse_proc_stat reads the state and start time from /proc/<pid>/stat text (the comm field may
// hold spaces and parentheses, so parsing starts after the last ')').
bool parse_proc_stat(const std::string& text, ProcStat* out);

// OCI_STATUS_* are the statuses berth-runtime reports in `state`.
constexpr const char* OCI_STATUS_CREATED = "created";
constexpr const char* OCI_STATUS_RUNNING = "running";
constexpr const char* OCI_STATUS_STOPPED = "stopped";

// oci_status decides the status: stopped when the process is gone, a zombie or a different
// process (start time differs); created while the exec fifo exists; running otherwise.
const char* oci_status(bool proc_found, const ProcStat& st, uint64_t recorded_start_ticks,
                       bool exec_fifo_exists);

}  // namespace berth

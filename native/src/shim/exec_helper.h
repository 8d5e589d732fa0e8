// exec_helper.h: berth-shim's exec modes, each a short-lived process of its own because joining
// a pid or mount namespace needs a single-threaded caller.
//
// `berth-shim --exec DIR PID` (run_exec): the request (exec.h's wire format) on stdin, the
// command's stdout/stderr on fds 1 and 2, and one status line on fd 3: `exit <code> <signal>`,
// `timeout <code> <signal>` or `err\t<errno>\t<step>\t<path>`.
//
// `berth-shim --exec-stream DIR PID` (run_exec_stream): interactive, with stdin, an optional pty
// made inside the container, resize and signals; fds 0-2 the command's stdio, fd 3 the request
// up to an empty line and then control lines, fd 4 the same status line (exec_io.h).
#pragma once

#include <cstddef>
#include <string>

#include "../lib/error.h"

namespace berth_shim {

// SPEC_FILE keeps the spec the shim was started with, so an exec can take the same identity.
constexpr const char* SPEC_FILE = "spec";
// MAX_SPEC_BYTES bounds what the shim reads as a spec or an exec request.
constexpr size_t MAX_SPEC_BYTES = 1024 * 1024;

// read_all reads fd to EOF into out, at most MAX_SPEC_BYTES (E2BIG past that).
int read_all(int fd, std::string* out, berth::Error* e);

// run_exec is `berth-shim --exec DIR PID`; it returns the helper's exit status.
int run_exec(const std::string& dir, const std::string& pid_text);

// run_exec_stream is `berth-shim --exec-stream DIR PID`; it returns the helper's exit status.
int run_exec_stream(const std::string& dir, const std::string& pid_text);

}  // namespace berth_shim

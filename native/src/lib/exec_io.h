// exec_io.h: the I/O of an interactive exec (`berth exec -i/-t`): a pty allocated inside the
// container, the control messages that resize it or signal the command, and the pump that
// moves bytes between the helper's own fds and the command's without ever blocking on one side.
//
// The helper (`berth-shim --exec-stream DIR PID`) has five fds from the agent:
//   0 the command's stdin, 1 its stdout (with a tty: the terminal's output), 2 its stderr
//   (unused with a tty), 3 control in: the request (exec.h's wire format, ended by an empty
//   line), then one control message a line, 4 status out: one line once the command is done.
// Control messages, in the same `key=value` format: `resize=ROWS COLS` (ignored without a tty),
// `signal=SIGNO` (with a tty to the terminal's foreground process group, as ^C would; without,
// to the command's process group). EOF on fd 3 hangs the command up: with a tty the master is
// closed (the kernel sends SIGHUP), without one its process group gets SIGHUP.
//
// Flow control is by back-pressure: the pump holds at most one PUMP_CHUNK_BYTES buffer per
// direction and reads a source only once its buffer has been written out, so a reader that stops
// reading stops the command (blocked on its pipe or pty), never grows memory.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "error.h"
#include "unique_fd.h"

namespace berth {

// PUMP_CHUNK_BYTES is the one buffer per direction: the most the helper holds at any time.
constexpr size_t PUMP_CHUNK_BYTES = 32 * 1024;
// PUMP_DRAIN_AFTER_EXIT_MS bounds the wait for more output once the command has exited and
// nothing more comes: only a process it left in the background still holds its pipes or pty.
// It never cuts output the reader is slow to take.
constexpr int PUMP_DRAIN_AFTER_EXIT_MS = 2000;

// ExecControl is one control message.
struct ExecControl {
  enum class Kind { Resize, Signal };
  Kind kind = Kind::Resize;
  uint16_t rows = 0;
  uint16_t cols = 0;
  int signo = 0;
};

// parse_exec_control parses one control line (without its newline); anything else is EINVAL.
int parse_exec_control(const std::string& line, ExecControl* out, Error* e);

// Pty is a pseudo-terminal pair: the master stays with the helper, the slave is the command's.
struct Pty {
  unique_fd master;
  unique_fd slave;
};

// open_pty opens /dev/ptmx as the caller's mount namespace sees it (inside the container once it
// is joined: the slave is then /dev/pts/N of the container's own devpts) and its slave through
// TIOCGPTPEER, so no path lookup can hand back another instance's pts. Both fds are O_NOCTTY.
int open_pty(Pty* out, Error* e);

// set_window_size sets the terminal's size (the kernel sends SIGWINCH to its foreground group).
int set_window_size(int master, uint16_t rows, uint16_t cols, Error* e);

// ExecIo is what the pump moves between: the agent's side (the helper's fds) and the command's.
struct ExecIo {
  unique_fd agent_in;    // bytes for the command's stdin; invalid: no stdin
  unique_fd agent_out;   // the command's stdout, or the terminal's output
  unique_fd agent_err;   // the command's stderr (invalid with a tty)
  unique_fd control;     // control lines (parse_exec_control); invalid: none
  std::string control_pending;  // control bytes read ahead of the request's end
  unique_fd master;      // with a tty: the pty's master (stdin, stdout and stderr at once)
  unique_fd child_in;    // without a tty: write end of the command's stdin pipe
  unique_fd child_out;   // without a tty: read ends of its stdout and stderr pipes
  unique_fd child_err;
  pid_t child_pid = -1;
  int child_pidfd = -1;  // polled for the command's exit
};

// run_exec_io pumps until the command has exited and its output is drained (or abandoned
// after PUMP_DRAIN_AFTER_EXIT_MS of silence), reaps it and stores its wait status. Every fd in
// io is closed by then, so the agent sees EOF on stdout/stderr before the status line.
int run_exec_io(ExecIo* io, int* wait_status, Error* e);

}  // namespace berth

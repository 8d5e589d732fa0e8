// exec_helper.cc: berth-shim's exec modes (see exec_helper.h).
#include "exec_helper.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>

#include "../lib/exec.h"
#include "../lib/exec_io.h"
#include "../lib/fsutil.h"
#include "../lib/spec.h"

namespace berth_shim {

using berth::Error;

namespace {

// EXEC_STATUS_FD carries the one status line of `--exec` (stdout/stderr belong to the command).
constexpr int EXEC_STATUS_FD = 3;
// The fds of `--exec-stream` beside the command's stdio: control in, status out (exec_io.h).
constexpr int STREAM_CONTROL_FD = 3;
constexpr int STREAM_STATUS_FD = 4;

// exec_status_line is the one status line of an exec helper.
std::string exec_status_line(int rc, const Error& e, const berth::ExecOutcome& out) {
  std::string line = rc < 0 ? "err\t" + std::to_string(e.err) + "\t" + e.step + "\t" + e.path
                            : std::string(out.timed_out ? "timeout " : "exit ") +
                                  std::to_string(out.exit_code) + " " + std::to_string(out.signal);
  return line + "\n";
}

// load_exec_target reads the container's spec and checks pid_text is still its running init.
int load_exec_target(const std::string& dir, const std::string& pid_text, berth::Spec* spec, Error* e) {
  std::string spec_text, live_pid;
  int rc = berth::read_file(dir + "/" + SPEC_FILE, &spec_text, e);
  if (rc == 0) rc = berth::parse_spec(spec_text, spec, e);
  // The pid must still be this container's running init, not a recycled number.
  if (rc == 0) rc = berth::read_file(dir + "/pid", &live_pid, e);
  if (rc == 0 && (live_pid != pid_text || ::access((dir + "/exit").c_str(), F_OK) == 0))
    rc = berth::fail(e, ESRCH, "find container init", pid_text);
  return rc;
}

// read_stream_request reads the request from the control fd up to its empty line; what came
// after it already is the first control input.
int read_stream_request(std::string* request, std::string* rest, Error* e) {
  std::string text;
  char buf[4096];
  for (;;) {
    size_t end = text.find("\n\n");
    if (end != std::string::npos) {
      *request = text.substr(0, end + 1);
      *rest = text.substr(end + 2);
      return 0;
    }
    ssize_t n = ::read(STREAM_CONTROL_FD, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return berth::fail(e, errno, "read exec request", "fd 3");
    if (n == 0) return berth::fail(e, EPROTO, "read exec request", "fd 3 closed before the empty line");
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > MAX_SPEC_BYTES) return berth::fail(e, E2BIG, "read exec request", "fd 3");
  }
}

// start_stream_command gives the command a pty made in the container, or three pipes, and
// starts it; io receives the helper's ends.
int start_stream_command(const berth::ExecContext& ctx, const berth::ExecRequest& req,
                         berth::ExecChild* child, berth::ExecIo* io, Error* e) {
  berth::ExecStdio stdio;
  stdio.new_session = true;
  stdio.die_with_parent = true;
  berth::unique_fd theirs[3];
  if (req.tty) {
    berth::Pty pty;
    if (int rc = berth::open_pty(&pty, e); rc < 0) return rc;
    // As login(1) does: the terminal belongs to whoever uses it, so it can reopen /dev/tty.
    // One it cannot take over (an unusual user namespace) still works through the fd it holds.
    int ignored = ::fchown(pty.slave.get(), ctx.container->uid, static_cast<gid_t>(-1));
    (void)ignored;
    if (req.rows > 0 && req.cols > 0) {
      if (int rc = berth::set_window_size(pty.master.get(), req.rows, req.cols, e); rc < 0) return rc;
    }
    stdio.tty = true;
    stdio.in = stdio.out = stdio.err = pty.slave.get();
    theirs[0] = std::move(pty.slave);
    io->master = std::move(pty.master);
  } else {
    berth::unique_fd* ours[3] = {&io->child_in, &io->child_out, &io->child_err};
    for (int i = 0; i < 3; i++) {
      int p[2];
      if (::pipe2(p, O_CLOEXEC) < 0) return berth::fail(e, errno, "pipe", "exec stdio");
      // stdin: the command reads p[0]; stdout/stderr: the command writes p[1].
      theirs[i].reset(i == 0 ? p[0] : p[1]);
      ours[i]->reset(i == 0 ? p[1] : p[0]);
    }
    stdio.in = theirs[0].get();
    stdio.out = theirs[1].get();
    stdio.err = theirs[2].get();
  }
  if (int rc = berth::spawn_exec(ctx, req, stdio, child, e); rc < 0) return rc;
  // Wait until the command has exec'd (or failed, saying why): the error pipe's write end closes
  // on exec. Before that it may not hold its terminal yet, and a ^C typed at once would be lost.
  struct pollfd p = {child->err_r.get(), POLLIN, 0};
  while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
  }
  // The command's ends close here (theirs), so its exit is seen as EOF.
  return 0;
}

}  // namespace

int run_exec(const std::string& dir, const std::string& pid_text) {
  Error e;
  std::string text;
  berth::Spec spec;
  berth::ExecRequest req;
  berth::ExecOutcome out;
  int rc = read_all(0, &text, &e);
  if (rc == 0) rc = berth::parse_exec_request(text, &req, &e);
  if (rc == 0) rc = load_exec_target(dir, pid_text, &spec, &e);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (rc == 0 && (null_fd < 0 || ::dup2(null_fd, 0) < 0)) rc = berth::fail(&e, errno, "dup2", "stdin");
  ::signal(SIGPIPE, SIG_IGN);
  if (rc == 0) {
    rc = berth::exec_in_container(spec, static_cast<pid_t>(std::atoi(pid_text.c_str())), req, &out,
                                  &e);
  }
  std::string line = exec_status_line(rc, e, out);
  ssize_t ignored = ::write(EXEC_STATUS_FD, line.data(), line.size());
  (void)ignored;
  return rc < 0 ? 1 : 0;
}

int run_exec_stream(const std::string& dir, const std::string& pid_text) {
  Error e;
  std::string text, rest;
  berth::Spec spec;
  berth::ExecRequest req;
  berth::ExecOutcome out;
  berth::ExecContext ctx;
  berth::ExecChild child;
  berth::ExecIo io;
  ::signal(SIGPIPE, SIG_IGN);
  int rc = read_stream_request(&text, &rest, &e);
  if (rc == 0) rc = berth::parse_exec_request(text, &req, &e);
  if (rc == 0) rc = load_exec_target(dir, pid_text, &spec, &e);
  if (rc == 0) rc = berth::join_container(spec, static_cast<pid_t>(std::atoi(pid_text.c_str())), &ctx, &e);
  if (rc == 0) rc = start_stream_command(ctx, req, &child, &io, &e);
  if (rc == 0) {
    io.agent_in.reset(0);
    io.agent_out.reset(1);
    io.agent_err.reset(2);
    io.control.reset(STREAM_CONTROL_FD);
    io.control_pending = rest;
    io.child_pid = child.pid;
    io.child_pidfd = child.pidfd.get();
    int status = 0;
    rc = berth::run_exec_io(&io, &status, &e);
    if (int setup = berth::finish_exec(&child, &e); setup < 0) rc = setup;
    else berth::exec_outcome(status, &out);
  }
  std::string line = exec_status_line(rc, e, out);
  ssize_t ignored = ::write(STREAM_STATUS_FD, line.data(), line.size());
  (void)ignored;
  return rc < 0 ? 1 : 0;
}


int read_all(int fd, std::string* out, Error* e) {
  const std::string name = fd == 0 ? "stdin" : "fd " + std::to_string(fd);
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return berth::fail(e, errno, "read spec", name);
    if (n == 0) return 0;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > MAX_SPEC_BYTES) return berth::fail(e, E2BIG, "read spec", name);
  }
}

}  // namespace berth_shim

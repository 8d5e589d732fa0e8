// exec_io_test.cc: the interactive exec's wire (control lines, request fields) and its pump,
// driven the way berth-shim --exec-stream drives it, with a forked child as the command on a
// real pty (the host's /dev/ptmx) or on pipes.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <thread>

#include "../src/lib/exec.h"
#include "../src/lib/exec_io.h"
#include "harness.h"

using berth::Error;
using berth::ExecControl;
using berth::unique_fd;

namespace {

// Run is one pumped command: the test's ends of the helper's fds, and the loop's outcome.
struct Run {
  unique_fd in_w, out_r, err_r, ctl_w;
  std::thread loop;
  int rc = 0;
  int status = 0;
  berth::ExecIo io;
};

void make_pipe(unique_fd* r, unique_fd* w) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0) throw berth_test::Failure{"pipe failed"};
  r->reset(p[0]);
  w->reset(p[1]);
}

// start forks body as the command, on a pty when tty (as its controlling terminal) or on pipes,
// and runs the pump in a thread. body runs in the child and its return value is the exit code.
void start(Run* run, bool tty, const std::function<int()>& body, uint16_t rows = 0, uint16_t cols = 0) {
  make_pipe(&run->io.agent_in, &run->in_w);
  make_pipe(&run->out_r, &run->io.agent_out);
  make_pipe(&run->err_r, &run->io.agent_err);
  make_pipe(&run->io.control, &run->ctl_w);
  unique_fd theirs[3];
  berth::Pty pty;
  if (tty) {
    Error e;
    EXPECT_EQ(berth::open_pty(&pty, &e), 0);
    if (rows > 0) EXPECT_EQ(berth::set_window_size(pty.master.get(), rows, cols, &e), 0);
  } else {
    make_pipe(&theirs[0], &run->io.child_in);
    make_pipe(&run->io.child_out, &theirs[1]);
    make_pipe(&run->io.child_err, &theirs[2]);
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setsid();
    if (tty) {
      ::ioctl(pty.slave.get(), TIOCSCTTY, 0);
      for (int i = 0; i < 3; i++) ::dup2(pty.slave.get(), i);
    } else {
      for (int i = 0; i < 3; i++) ::dup2(theirs[i].get(), i);
    }
    // As the exec would: the test's ends must not stay open in the command.
    ::syscall(SYS_close_range, 3U, ~0U, 0U);
    ::_exit(body());
  }
  pty.slave.reset();
  for (auto& t : theirs) t.reset();
  run->io.master = std::move(pty.master);
  run->io.child_pid = pid;
  run->io.child_pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  run->loop = std::thread([run] { run->rc = berth::run_exec_io(&run->io, &run->status, nullptr); });
}

// read_all reads fd to EOF.
std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

// read_until reads fd until want has been seen (the command is then past its setup).
void read_until(int fd, const std::string& want) {
  std::string got;
  char c;
  while (got.find(want) == std::string::npos) {
    if (::read(fd, &c, 1) != 1) throw berth_test::Failure{"EOF before \"" + want + "\", seen: " + got};
    got += c;
  }
}

// ready tells the test the command has its terminal and session.
void ready() {
  ssize_t ignored = ::write(1, "ready\n", 6);
  (void)ignored;
}

void put(const unique_fd& fd, const std::string& s) {
  EXPECT_EQ(::write(fd.get(), s.data(), s.size()), static_cast<ssize_t>(s.size()));
}

void finish(Run* run) {
  run->loop.join();
  ::close(run->io.child_pidfd);
  EXPECT_EQ(run->rc, 0);
}

}  // namespace

TEST(exec_control_parses_resize_and_signal) {
  ExecControl c;
  EXPECT_EQ(berth::parse_exec_control("resize=30 100", &c, nullptr), 0);
  EXPECT_TRUE(c.kind == ExecControl::Kind::Resize);
  EXPECT_EQ(c.rows, 30);
  EXPECT_EQ(c.cols, 100);
  EXPECT_EQ(berth::parse_exec_control("signal=2", &c, nullptr), 0);
  EXPECT_TRUE(c.kind == ExecControl::Kind::Signal);
  EXPECT_EQ(c.signo, 2);
}

TEST(exec_control_refuses_malformed_lines) {
  const char* bad[] = {"resize=30", "resize=30 x", "resize=-1 80", "resize=70000 80", "signal=0",
                       "signal=65", "signal=INT", "kill=9", "nonsense"};
  for (const char* line : bad) {
    ExecControl c;
    Error e;
    if (berth::parse_exec_control(line, &c, &e) != -EINVAL)
      throw berth_test::Failure{std::string("expected EINVAL for \"") + line + "\""};
  }
}

TEST(exec_request_parses_tty_and_window) {
  berth::ExecRequest req;
  Error e;
  EXPECT_EQ(berth::parse_exec_request("arg=sh\ntty=1\nrows=40\ncols=120\n", &req, &e), 0);
  EXPECT_TRUE(req.tty);
  EXPECT_EQ(req.rows, 40);
  EXPECT_EQ(req.cols, 120);
  for (const char* bad : {"arg=sh\ntty=yes\n", "arg=sh\nrows=-3\n", "arg=sh\ncols=65536\n"}) {
    berth::ExecRequest r;
    if (berth::parse_exec_request(bad, &r, &e) != -EINVAL)
      throw berth_test::Failure{std::string("expected EINVAL for ") + bad};
  }
}

TEST(exec_io_tty_is_the_controlling_terminal_and_resizes) {
  Run run;
  start(&run, true, [] {
    char line[16];
    // Blocks until the test's stdin arrives, which it sends after the resize.
    if (::read(0, line, sizeof line) <= 0) return 1;
    struct winsize ws {};
    ::ioctl(0, TIOCGWINSZ, &ws);
    bool ctty = ::tcgetpgrp(0) == ::getpgrp();
    std::string msg = std::to_string(ws.ws_row) + "x" + std::to_string(ws.ws_col) +
                      (ctty ? " ctty\n" : " no-ctty\n");
    ssize_t ignored = ::write(1, msg.data(), msg.size());
    (void)ignored;
    return 7;
  }, 24, 80);
  put(run.ctl_w, "resize=30 100\n");
  put(run.in_w, "go\n");
  std::string out = read_all(run.out_r.get());
  finish(&run);
  EXPECT_TRUE(out.find("30x100 ctty") != std::string::npos);
  EXPECT_TRUE(WIFEXITED(run.status));
  EXPECT_EQ(WEXITSTATUS(run.status), 7);
  // With a tty there is no separate stderr: the helper closes it at once.
  EXPECT_EQ(read_all(run.err_r.get()), std::string());
}

TEST(exec_io_tty_ctrl_c_interrupts_the_command) {
  Run run;
  start(&run, true, [] {
    ready();
    ::pause();
    return 0;
  });
  read_until(run.out_r.get(), "ready");
  put(run.in_w, "\x03");
  read_all(run.out_r.get());
  finish(&run);
  berth::ExecOutcome out;
  berth::exec_outcome(run.status, &out);
  EXPECT_EQ(out.exit_code, 130);
  EXPECT_EQ(out.signal, SIGINT);
}

TEST(exec_io_tty_stdin_eof_is_the_eof_character) {
  Run run;
  start(&run, true, [] {
    char buf[64];
    ssize_t total = 0, n;
    while ((n = ::read(0, buf, sizeof buf)) > 0) total += n;
    return n == 0 ? 3 : 1;
  });
  run.in_w.reset();
  read_all(run.out_r.get());
  finish(&run);
  EXPECT_EQ(WEXITSTATUS(run.status), 3);
}

TEST(exec_io_pipes_carry_stdin_stdout_stderr) {
  Run run;
  start(&run, false, [] {
    char buf[256];
    ssize_t n;
    while ((n = ::read(0, buf, sizeof buf)) > 0) {
      if (::write(1, buf, static_cast<size_t>(n)) != n) return 1;
    }
    if (::write(2, "bye\n", 4) != 4) return 1;
    return 0;
  });
  put(run.in_w, "hello\n");
  run.in_w.reset();
  std::string out = read_all(run.out_r.get());
  std::string err = read_all(run.err_r.get());
  finish(&run);
  EXPECT_EQ(out, std::string("hello\n"));
  EXPECT_EQ(err, std::string("bye\n"));
  EXPECT_EQ(run.status, 0);
}

TEST(exec_io_signal_message_reaches_a_command_without_tty) {
  Run run;
  start(&run, false, [] {
    ready();
    ::pause();
    return 0;
  });
  read_until(run.out_r.get(), "ready");
  put(run.ctl_w, "signal=15\n");
  read_all(run.out_r.get());
  finish(&run);
  EXPECT_TRUE(WIFSIGNALED(run.status));
  EXPECT_EQ(WTERMSIG(run.status), SIGTERM);
}

TEST(exec_io_control_eof_hangs_up_the_command) {
  Run run;
  start(&run, false, [] {
    ready();
    ::pause();
    return 0;
  });
  read_until(run.out_r.get(), "ready");
  run.ctl_w.reset();
  read_all(run.out_r.get());
  finish(&run);
  EXPECT_TRUE(WIFSIGNALED(run.status));
  EXPECT_EQ(WTERMSIG(run.status), SIGHUP);
}

TEST(exec_io_output_survives_a_reader_that_comes_late) {
  // More than the pipe, the socket and the pump hold together: the command must wait for the
  // reader instead of the helper buffering or dropping what it wrote.
  constexpr size_t TOTAL_BYTES = 4 * 1024 * 1024;
  Run run;
  start(&run, false, [] {
    std::string chunk(64 * 1024, 'x');
    for (size_t sent = 0; sent < TOTAL_BYTES; sent += chunk.size()) {
      if (::write(1, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size())) return 1;
    }
    return 0;
  });
  run.in_w.reset();
  std::string out = read_all(run.out_r.get());
  finish(&run);
  EXPECT_EQ(out.size(), TOTAL_BYTES);
  EXPECT_EQ(run.status, 0);
}

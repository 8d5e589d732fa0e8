// init_test.cc: berth-init's loop (init.h), run in a forked process that plays PID 1: signals
// are forwarded to the command, its own status comes back on the status pipe, an exec failure
// on the error pipe, and orphans reparented to the init are reaped.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "../src/lib/init.h"
#include "../src/lib/unique_fd.h"
#include "harness.h"

using berth::unique_fd;

namespace {

constexpr int READ_LIMIT_MS = 5000;
constexpr int REAP_LIMIT_MS = 5000;
constexpr int REAP_POLL_MS = 10;

// Init is one run_init in a forked child, with pipes for the command's stdout, the error pipe
// (fd 3 in the child) and the status pipe (fd 4); the destructor kills and reaps it if needed.
struct Init {
  pid_t pid = -1;
  unique_fd out, error, status;
  bool reaped = false;

  explicit Init(const std::vector<std::string>& args) {
    int o[2], er[2], st[2];
    if (::pipe2(o, O_CLOEXEC) < 0 || ::pipe2(er, O_CLOEXEC) < 0 || ::pipe2(st, O_CLOEXEC) < 0) return;
    pid = ::fork();
    if (pid == 0) {
      // Lift the ends first, so placing one cannot close another.
      int ow = ::fcntl(o[1], F_DUPFD, 20), ew = ::fcntl(er[1], F_DUPFD, 20), sw = ::fcntl(st[1], F_DUPFD, 20);
      ::dup2(ow, 1);
      ::dup2(ew, berth::INIT_ERROR_FD);
      ::dup2(sw, berth::INIT_STATUS_FD);
      ::_exit(berth::run_init(args, {"PATH=/usr/bin:/bin"}));
    }
    ::close(o[1]);
    ::close(er[1]);
    ::close(st[1]);
    out.reset(o[0]);
    error.reset(er[0]);
    status.reset(st[0]);
  }
  ~Init() {
    if (pid <= 0 || reaped) return;
    ::kill(pid, SIGKILL);  // our own unreaped child
    ::waitpid(pid, nullptr, 0);
  }
  int wait() {
    int st = 0;
    ::waitpid(pid, &st, 0);
    reaped = true;
    return st;
  }
};

// read_line reads one line from fd, bounded; "<timeout>" or "<eof>" when none comes.
std::string read_line(int fd) {
  std::string line;
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    if (::poll(&p, 1, READ_LIMIT_MS) <= 0) return line + "<timeout>";
    char c;
    if (::read(fd, &c, 1) != 1) return line + "<eof>";
    if (c == '\n') return line;
    line.push_back(c);
  }
}

std::string read_all(int fd) {
  std::string text;
  char buf[256];
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    if (::poll(&p, 1, READ_LIMIT_MS) <= 0) return text + "<timeout>";
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return text;
    text.append(buf, static_cast<size_t>(n));
  }
}

int command_status(Init& init) {
  int st = -1;
  std::string text = read_all(init.status.get());
  EXPECT_TRUE(berth::parse_init_status(text, &st));
  return st;
}

bool gone(pid_t pid) { return ::access(("/proc/" + std::to_string(pid)).c_str(), F_OK) < 0; }

}  // namespace

TEST(init_forwards_signals_and_reports_the_commands_exit) {
  Init init({"sh", "-c", "trap 'exit 7' USR1; echo ready; while :; do sleep 0.05; done"});
  EXPECT_TRUE(init.pid > 0);
  EXPECT_EQ(read_line(init.out.get()), "ready");
  ::kill(init.pid, SIGUSR1);
  int st = init.wait();
  EXPECT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 7);
  int cmd = command_status(init);
  EXPECT_TRUE(WIFEXITED(cmd) && WEXITSTATUS(cmd) == 7);
  EXPECT_EQ(read_all(init.error.get()), "");
}

TEST(init_reports_a_command_killed_by_a_signal_as_killed) {
  Init init({"sh", "-c", "echo ready; exec sleep 1000"});
  EXPECT_EQ(read_line(init.out.get()), "ready");
  ::kill(init.pid, SIGTERM);
  int st = init.wait();
  // The init itself can only exit; the status pipe carries the truth.
  EXPECT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 128 + SIGTERM);
  int cmd = command_status(init);
  EXPECT_TRUE(WIFSIGNALED(cmd));
  EXPECT_EQ(WTERMSIG(cmd), SIGTERM);
  EXPECT_EQ(berth::init_exit_code(cmd), 143);
}

TEST(init_reports_an_exec_failure_on_the_error_pipe) {
  Init init({"/nonexistent/command"});
  EXPECT_EQ(read_all(init.error.get()), std::to_string(ENOENT) + "\texec\t/nonexistent/command");
  int st = init.wait();
  EXPECT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 127);
}

TEST(init_reaps_orphans) {
  // The subshell exits at once, so its background sleep is reparented to the init.
  Init init({"sh", "-c", "( sleep 0.05 & echo $! ); echo ready; exec sleep 1000"});
  std::string orphan = read_line(init.out.get());
  EXPECT_EQ(read_line(init.out.get()), "ready");
  pid_t pid = static_cast<pid_t>(std::atoi(orphan.c_str()));
  EXPECT_TRUE(pid > 0);
  // A zombie keeps its /proc entry: only a reaped orphan is gone.
  for (int waited = 0; !gone(pid) && waited < REAP_LIMIT_MS; waited += REAP_POLL_MS) {
    struct timespec ts {0, REAP_POLL_MS * 1000000L};
    ::nanosleep(&ts, nullptr);
  }
  EXPECT_TRUE(gone(pid));
  ::kill(init.pid, SIGTERM);
  init.wait();
}

TEST(init_status_line_is_strict) {
  int st = 0;
  EXPECT_TRUE(berth::parse_init_status("1792\n", &st));  // exit 7
  EXPECT_EQ(st, 7 << 8);
  EXPECT_TRUE(berth::parse_init_status("15\n", &st));  // killed by SIGTERM
  EXPECT_TRUE(!berth::parse_init_status("15", &st));
  EXPECT_TRUE(!berth::parse_init_status("x\n", &st));
  EXPECT_TRUE(!berth::parse_init_status("-1\n", &st));
  EXPECT_TRUE(!berth::parse_init_status("127\n", &st));  // 0x7f: a stop, not an exit
  EXPECT_TRUE(!berth::parse_init_status("99999999\n", &st));
}

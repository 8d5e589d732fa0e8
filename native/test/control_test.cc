// control_test.cc: the shim's control channel (control.h) — the request grammar, the exit line,
// and a real socket served the way the shim serves it, with a forked child as the container.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "../src/lib/control.h"
#include "../src/lib/fsutil.h"
#include "harness.h"

using berth::ControlRequest;
using berth::Error;
using berth::unique_fd;

namespace {

constexpr int SERVE_LIMIT_MS = 5000;

std::string temp_dir() {
  char tmpl[] = "/tmp/berth-control-test-XXXXXX";
  char* d = ::mkdtemp(tmpl);
  return d == nullptr ? std::string() : std::string(d);
}

int64_t now_ms() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// PidfdTarget signals a forked child through a pidfd, as the shim signals its init, and counts.
class PidfdTarget : public berth::ControlTarget {
 public:
  explicit PidfdTarget(pid_t pid) : pidfd_(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))) {}
  int signal(int sig) override {
    calls++;
    return ::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0) < 0 ? -errno : 0;
  }
  int calls = 0;

 private:
  unique_fd pidfd_;
};

// serve_until_line runs the server until client has a line to read (bounded), and returns it.
std::string serve_until_line(berth::ControlServer& server, berth::ControlTarget& target, int client) {
  std::string line;
  int64_t deadline = now_ms() + SERVE_LIMIT_MS;
  while (now_ms() < deadline) {
    std::vector<struct pollfd> pfds;
    server.add_poll_fds(&pfds);
    pfds.push_back({client, POLLIN, 0});
    if (::poll(pfds.data(), pfds.size(), 50) < 0 && errno != EINTR) break;
    server.handle(pfds.data(), pfds.size() - 1, target);
    if (pfds.back().revents & (POLLIN | POLLHUP)) {
      char c;
      while (::recv(client, &c, 1, MSG_DONTWAIT) == 1) {
        line.push_back(c);
        if (c == '\n') return line;
      }
      if (pfds.back().revents & POLLHUP) return line;
    }
  }
  return line + "<timeout>";
}

void send_line(int fd, const std::string& line) {
  ssize_t n = ::send(fd, line.data(), line.size(), MSG_NOSIGNAL);
  EXPECT_EQ(n, static_cast<ssize_t>(line.size()));
}

// Reaper kills and reaps the forked child unless the test did, so a failed check leaks nothing.
struct Reaper {
  pid_t pid;
  bool reaped = false;
  ~Reaper() {
    if (pid <= 0 || reaped) return;
    ::kill(pid, SIGKILL);  // our own unreaped child
    ::waitpid(pid, nullptr, 0);
  }
};

// exercise serves a live socket with a forked child as the container and checks every exchange.
void exercise(const std::string& sock) {
  pid_t child = ::fork();
  if (child == 0) {
    for (;;) ::pause();
  }
  Reaper reaper{child};
  EXPECT_TRUE(child > 0);
  PidfdTarget target(child);
  berth::ControlServer server;
  Error e;
  EXPECT_EQ(server.listen(sock, &e), 0);
  struct stat st {};
  EXPECT_EQ(::stat(sock.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  unique_fd waiter, killer;
  EXPECT_EQ(berth::connect_control(sock, &waiter, &e), 0);
  EXPECT_EQ(berth::connect_control(sock, &killer, &e), 0);
  send_line(waiter.get(), "wait\n");
  send_line(killer.get(), "hello\n");
  EXPECT_EQ(serve_until_line(server, target, killer.get()), "err EINVAL\n");
  send_line(killer.get(), "kill 15\n");
  EXPECT_EQ(serve_until_line(server, target, killer.get()), "ok\n");
  EXPECT_EQ(target.calls, 1);

  int status = 0;
  EXPECT_EQ(::waitpid(child, &status, 0), child);
  reaper.reaped = true;
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
  server.publish_exit(berth::exit_info(status, false));
  EXPECT_EQ(serve_until_line(server, target, waiter.get()), "exit 143 15 0\n");

  // Once the exit is known nothing is signalled: the PID is free for anyone to reuse.
  send_line(killer.get(), "kill 9\n");
  EXPECT_EQ(serve_until_line(server, target, killer.get()), "err ESRCH\n");
  EXPECT_EQ(target.calls, 1);
  unique_fd late;
  EXPECT_EQ(berth::connect_control(sock, &late, &e), 0);
  send_line(late.get(), "wait\n");
  EXPECT_EQ(serve_until_line(server, target, late.get()), "exit 143 15 0\n");

  server.close();
  EXPECT_EQ(::access(sock.c_str(), F_OK), -1);
  unique_fd gone;
  EXPECT_EQ(berth::connect_control(sock, &gone, &e), -ENOENT);
}

}  // namespace

TEST(control_request_grammar) {
  struct Case {
    const char* line;
    int rc;
    ControlRequest::Verb verb;
    int signal;
  };
  const Case cases[] = {
      {"wait", 0, ControlRequest::WAIT, 0},   {"kill 15", 0, ControlRequest::KILL, 15},
      {"kill 9", 0, ControlRequest::KILL, 9}, {"kill 64", 0, ControlRequest::KILL, 64},
      {"kill 0", -EINVAL, ControlRequest::WAIT, 0},  {"kill 65", -EINVAL, ControlRequest::WAIT, 0},
      {"kill", -EINVAL, ControlRequest::WAIT, 0},    {"kill -9", -EINVAL, ControlRequest::WAIT, 0},
      {"kill TERM", -EINVAL, ControlRequest::WAIT, 0}, {"kill 15 ", -EINVAL, ControlRequest::WAIT, 0},
      {"wait ", -EINVAL, ControlRequest::WAIT, 0},   {"", -EINVAL, ControlRequest::WAIT, 0},
  };
  for (const Case& c : cases) {
    ControlRequest req;
    Error e;
    EXPECT_EQ(berth::parse_control_request(c.line, &req, &e), c.rc);
    if (c.rc == 0) {
      EXPECT_EQ(req.verb, c.verb);
      EXPECT_EQ(req.signal, c.signal);
    } else {
      EXPECT_EQ(e.step, std::string("parse control request"));
    }
  }
}

TEST(exit_info_keeps_code_and_signal_apart) {
  berth::ExitInfo x = berth::exit_info(7 << 8, false);
  EXPECT_EQ(berth::format_exit(x), "exit 7 0 0\n");
  x = berth::exit_info(SIGKILL, true);
  EXPECT_EQ(x.code, 137);
  EXPECT_EQ(x.signal, SIGKILL);
  EXPECT_EQ(berth::format_exit(x), "exit 137 9 1\n");
}

TEST(control_channel_kills_through_the_target_and_pushes_the_exit) {
  std::string dir = temp_dir();
  EXPECT_TRUE(!dir.empty());
  exercise(dir + "/shim.sock");
  ::rmdir(dir.c_str());
}

TEST(control_channel_works_past_the_sun_path_limit) {
  std::string dir = temp_dir();
  EXPECT_TRUE(!dir.empty());
  std::string deep = dir + "/" + std::string(60, 'a') + "/" + std::string(60, 'b');
  Error e;
  EXPECT_EQ(berth::mkdir_p(deep, 0755, &e), 0);
  struct sockaddr_un addr;
  unique_fd keep;
  std::string sock = deep + "/shim.sock";
  EXPECT_EQ(berth::unix_address(sock, &addr, &keep, &e), 0);
  EXPECT_TRUE(keep.valid());
  EXPECT_EQ(std::string(addr.sun_path).compare(0, 14, "/proc/self/fd/"), 0);
  keep.reset();
  exercise(sock);
  ::rmdir(deep.c_str());
  ::rmdir((dir + "/" + std::string(60, 'a')).c_str());
  ::rmdir(dir.c_str());
}

// init.cc: the loop of berth-init (see init.h).
#include "init.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "error.h"
#include "execvp.h"

namespace berth {

namespace {

constexpr int EXEC_FAILED_EXIT = 127;
// SYNCHRONOUS_SIGNALS are the init's own faults; blocking them would turn a crash into a hang.
constexpr int SYNCHRONOUS_SIGNALS[] = {SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV, SIGSYS};

// own_fd returns fd marked close-on-exec (the command must not inherit the init's pipes), or -1
// when it is not open.
int own_fd(int fd) {
  int flags = ::fcntl(fd, F_GETFD);
  if (flags < 0) return -1;
  ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
  return fd;
}

void write_line(int fd, const std::string& line) {
  if (fd < 0) return;
  ssize_t ignored = ::write(fd, line.data(), line.size());
  (void)ignored;
}

void report_error(int fd, const Error& e) {
  write_line(fd, std::to_string(e.err) + "\t" + e.step + "\t" + e.path);
}

[[noreturn]] void command_main(const std::vector<std::string>& args,
                               const std::vector<std::string>& env, const sigset_t& mask,
                               int error_fd) {
  ::sigprocmask(SIG_SETMASK, &mask, nullptr);
  Error e;
  execvp_env(args, env, &e);
  report_error(error_fd, e);
  ::_exit(EXEC_FAILED_EXIT);
}

}  // namespace

int init_exit_code(int wait_status) {
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return WEXITSTATUS(wait_status);
}

bool parse_init_status(const std::string& text, int* wait_status) {
  if (text.empty() || text.back() != '\n' || text.size() > 16) return false;
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(text.c_str(), &end, 10);
  if (errno != 0 || end == text.c_str() || *end != '\n' || v < 0 || v > 0xffff) return false;
  int st = static_cast<int>(v);
  // Only what an exit can look like: exited with a code, or killed by a signal.
  if (!WIFEXITED(st) && !WIFSIGNALED(st)) return false;
  *wait_status = st;
  return true;
}

int run_init(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  int error_fd = own_fd(INIT_ERROR_FD);
  int status_fd = own_fd(INIT_STATUS_FD);
  if (::getpid() != 1) ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  // An inherited SIG_IGN would make the kernel reap the command itself and hide its status.
  ::signal(SIGCHLD, SIG_DFL);
  // Everything the init can catch is blocked and taken with sigwaitinfo: a signal that arrives
  // before the command exists stays pending and is forwarded once it does.
  sigset_t all, before;
  sigfillset(&all);
  for (int sig : SYNCHRONOUS_SIGNALS) sigdelset(&all, sig);
  ::sigprocmask(SIG_SETMASK, &all, &before);
  if (args.empty()) {
    report_error(error_fd, Error{EINVAL, "init", "no command"});
    return EXEC_FAILED_EXIT;
  }
  pid_t child = ::fork();
  if (child < 0) {
    report_error(error_fd, Error{errno, "fork", args[0]});
    return EXEC_FAILED_EXIT;
  }
  if (child == 0) command_main(args, env, before, error_fd);
  if (error_fd >= 0) ::close(error_fd);
  int status = 0;
  for (;;) {
    siginfo_t info;
    int sig = ::sigwaitinfo(&all, &info);
    if (sig < 0) continue;  // EINTR only: every signal is in the set
    if (sig != SIGCHLD) {
      // child is our own unreaped child, so this PID cannot have been reused.
      ::kill(child, sig);
      continue;
    }
    bool done = false;
    for (;;) {
      int st = 0;
      pid_t p = ::waitpid(-1, &st, WNOHANG);
      if (p <= 0) break;
      if (p == child) {
        status = st;
        done = true;
      }
    }
    if (done) break;
  }
  write_line(status_fd, std::to_string(status) + "\n");
  return init_exit_code(status);
}

}  // namespace berth

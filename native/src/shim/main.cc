// berth-shim: one small process per container. It is spawned by the addon with the spec on
// stdin and a reply pipe on stdout, creates the cgroup and the container, answers
// `ok <pid> <shimPid>` or `err\t<errno>\t<step>\t<path>`, then stays as the container's parent:
// it pumps the logs, serves the control channel (`shim.sock`: kill and wait, see control.h),
// collects the exit status into `<dir>/exit`, removes the cgroup and pushes the exit to waiters.
// It is the only process that signals the container, through a pidfd; the container dies with
// it (LaunchOptions::die_with_parent).
//
// `berth-shim --exec DIR PID` runs one command inside the running container instead, and
// `berth-shim --exec-stream DIR PID` runs one interactively (exec_helper.h).
//
// Files in the container dir: spec (the shim wire format), pid, shim.pid, shim.sock,
// container.log(.1), exit (JSON, written atomically).
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "../lib/cgroup.h"
#include "../lib/container.h"
#include "../lib/control.h"
#include "../lib/fsutil.h"
#include "../lib/init.h"
#include "../lib/logpump.h"
#include "../lib/spec.h"
#include "exec_helper.h"

namespace {

using berth::Error;

constexpr int REPLY_FD = 1;
// Once the init is gone every process of its pid namespace is gone too, so the pipes close
// promptly; the bound only guards against a descriptor leaked outside the namespace.
constexpr int DRAIN_AFTER_EXIT_MS = 2000;
constexpr size_t READ_CHUNK_BYTES = 64 * 1024;

void reply(const std::string& line) {
  std::string msg = line + "\n";
  ssize_t ignored = ::write(REPLY_FD, msg.data(), msg.size());
  (void)ignored;
}

void reply_error(const Error& e) {
  reply("err\t" + std::to_string(e.err) + "\t" + e.step + "\t" + e.path);
}

int read_spec(std::string* out, Error* e) { return berth_shim::read_all(0, out, e); }

std::string exit_json(const berth::ExitInfo& x) {
  return std::string("{\"exitCode\":") + std::to_string(x.code) + ",\"signal\":" +
         std::to_string(x.signal) + ",\"oomKilled\":" + (x.oom_killed ? "true" : "false") +
         ",\"finishedAt\":\"" + berth::rfc3339_nano() + "\"}\n";
}

// InitTarget signals the container's init through the pidfd launch_container opened, and
// refuses once the init is reaped: after that its PID may belong to anyone.
class InitTarget : public berth::ControlTarget {
 public:
  explicit InitTarget(int pidfd) : pidfd_(pidfd) {}
  int signal(int sig) override {
    if (reaped_) return -ESRCH;
    if (::syscall(SYS_pidfd_send_signal, pidfd_, sig, nullptr, 0) < 0) return -errno;
    return 0;
  }
  void reaped() { reaped_ = true; }

 private:
  int pidfd_;
  bool reaped_ = false;
};

// command_status is the status to record: with an init, the command's own (init.h), which the
// init wrote just before exiting; otherwise, or when the init died without writing it (killed),
// the init's.
int command_status(int init_status, const berth::unique_fd& status_r) {
  if (!status_r.valid()) return init_status;
  char buf[32];
  ssize_t n = ::read(status_r.get(), buf, sizeof buf);
  int st = 0;
  if (n > 0 && berth::parse_init_status(std::string(buf, static_cast<size_t>(n)), &st)) return st;
  return init_status;
}

// supervise pumps logs and serves the control channel until the container has exited and its
// pipes are drained, and returns the init's wait status.
int supervise(berth::Launched& run, berth::LogPump& logs, int sigfd, berth::ControlServer& control,
              InitTarget& target) {
  int status = 0;
  bool exited = false;
  berth::unique_fd* streams[2] = {&run.stdout_r, &run.stderr_r};
  std::vector<char> buf(READ_CHUNK_BYTES);
  std::vector<struct pollfd> pfds;
  for (;;) {
    pfds.clear();
    pfds.push_back({sigfd, POLLIN, 0});
    int idx[2] = {-1, -1};
    for (int s = 0; s < 2; s++) {
      if (streams[s]->valid()) {
        idx[s] = static_cast<int>(pfds.size());
        pfds.push_back({streams[s]->get(), POLLIN, 0});
      }
    }
    if (exited && idx[0] < 0 && idx[1] < 0) break;
    size_t control_at = pfds.size();
    control.add_poll_fds(&pfds);
    int ready = ::poll(pfds.data(), pfds.size(), exited ? DRAIN_AFTER_EXIT_MS : -1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    if (pfds[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (::read(sigfd, &si, sizeof si) == sizeof si) {
      }
      // As a subreaper we also inherit orphans; reap them all, remember only the init.
      for (;;) {
        int st = 0;
        pid_t p = ::waitpid(-1, &st, WNOHANG);
        if (p <= 0) break;
        if (p == run.pid) {
          status = st;
          exited = true;
          target.reaped();
        }
      }
    }
    for (int s = 0; s < 2; s++) {
      if (idx[s] < 0 || pfds[idx[s]].revents == 0) continue;
      ssize_t got = ::read(streams[s]->get(), buf.data(), buf.size());
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (got <= 0) {
        logs.finish(s, nullptr);
        streams[s]->reset();
        continue;
      }
      logs.feed(s, buf.data(), static_cast<size_t>(got), nullptr);
    }
    control.handle(pfds.data() + control_at, pfds.size() - control_at, target);
  }
  for (int s = 0; s < 2; s++) logs.finish(s, nullptr);
  if (!exited) {
    ::waitpid(run.pid, &status, 0);
    target.reaped();
  }
  return status;
}

int run_shim(const std::string& dir) {
  Error e;
  std::string text;
  berth::Spec spec;
  if (read_spec(&text, &e) < 0 || berth::parse_spec(text, &spec, &e) < 0) {
    reply_error(e);
    return 1;
  }
  // The spawned process is already a session leader (POSIX_SPAWN_SETSID); forking once more
  // makes the long-lived shim a non-leader that can never acquire a controlling terminal,
  // and lets the addon reap its direct child right away.
  pid_t daemon = ::fork();
  if (daemon < 0) {
    reply_error({errno, "fork", dir});
    return 1;
  }
  if (daemon > 0) ::_exit(0);

  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd >= 0) {
    ::dup2(null_fd, 0);
    ::dup2(null_fd, 2);
  }
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &chld, nullptr);
  berth::unique_fd sigfd(::signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!sigfd.valid()) {
    reply_error({errno, "signalfd", dir});
    return 1;
  }

  std::unique_ptr<berth::Cgroup> cg = berth::make_cgroup(spec);
  berth::LogPump logs(dir + "/container.log", spec.log_max_bytes);
  berth::Launched run;
  berth::LaunchOptions opts;
  opts.die_with_parent = true;
  int rc = logs.open(&e);
  if (rc == 0) rc = berth::launch_container(spec, dir, *cg, &run, &e, opts);
  if (rc < 0) {
    reply_error(e);
    cg->destroy(nullptr);
    return 1;
  }
  InitTarget target(run.pidfd.get());
  berth::ControlServer control;
  std::string pid = std::to_string(run.pid);
  std::string self = std::to_string(::getpid());
  // The socket before `pid`: whoever finds the container running can reach its shim.
  // `spec` before `pid`: whoever sees the pid file may exec, and exec reads the spec.
  if (control.listen(dir + "/" + berth::CONTROL_SOCKET, &e) < 0 ||
      berth::write_file_atomic(dir + "/" + berth_shim::SPEC_FILE, berth::spec_without_files(text), &e) < 0 ||
      berth::write_file_atomic(dir + "/pid", pid, &e) < 0 ||
      berth::write_file_atomic(dir + "/shim.pid", self, &e) < 0) {
    reply_error(e);
    // The caller was told it failed, so it must not find the container running later.
    target.signal(SIGKILL);
  } else {
    reply("ok " + pid + " " + self);
  }
  if (null_fd >= 0) ::dup2(null_fd, REPLY_FD);

  int status = supervise(run, logs, sigfd.get(), control, target);
  berth::ExitInfo info = berth::exit_info(command_status(status, run.init_status_r), cg->oom_killed());
  // The record first, then the push: a waiter told of the exit finds the record written.
  berth::write_file_atomic(dir + "/exit", exit_json(info), nullptr);
  cg->destroy(nullptr);
  control.publish_exit(info);
  control.close();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--exec") return berth_shim::run_exec(argv[2], argv[3]);
  if (argc == 4 && std::string(argv[1]) == "--exec-stream") return berth_shim::run_exec_stream(argv[2], argv[3]);
  if (argc != 2) {
    reply("err\t" + std::to_string(EINVAL) +
          "\tusage\tberth-shim <container-dir> | berth-shim --exec[-stream] <container-dir> <pid>");
    return 2;
  }
  return run_shim(argv[1]);
}

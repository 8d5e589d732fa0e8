// container.cc: the container init's setup, run in the cloned child between clone() and execve().
// Everything mounted here lives only in the child's mount namespace, so the host keeps no trace
// of a container once its init is gone.
#include "container.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/close_range.h>

#include <vector>

#include "exec.h"
#include "fsutil.h"
#include "init.h"
#include "mounts.h"
#include "projected.h"
#include "seccomp.h"
#include "security.h"
#include "userns.h"

namespace berth {

namespace {

constexpr int NAMESPACE_FLAGS = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |
                                CLONE_NEWNET;
constexpr int EXEC_FAILED_EXIT = 127;

// Privileges are resolved once in the shim, before the clone, so the init only applies them.
struct Privileges {
  CapSets caps;
  SeccompProgram seccomp;  // empty: unconfined (no_new_privs is still set)
};

// prepare_privileges resolves the spec's capabilities and builds its seccomp filter.
int prepare_privileges(const Spec& spec, Privileges* out, Error* e) {
  if (int rc = resolve_caps(spec.cap_add, spec.cap_drop, spec.uid, &out->caps, e); rc < 0) return rc;
  if (spec.seccomp) build_default_seccomp(out->caps.bounding, &out->seccomp);
  return 0;
}

// start_init does what only the shim can do for the init before it may go on: write the user
// namespace's id maps (the init waits for them before touching anything) and set the rlimits
// from outside, so they may exceed the shim's own hard limits even in a user namespace.
int start_init(const Spec& spec, pid_t pid, int sync_w, Error* e) {
  if (spec.user_namespace) {
    if (int rc = write_id_maps(pid, spec, e); rc < 0) return rc;
    char go = 1;
    if (::write(sync_w, &go, 1) != 1) return fail(e, errno, "signal child", "uid_map");
  }
  return apply_rlimits(pid, spec.rlimits, e);
}

// clone_namespaces is what clone() creates; the cgroup namespace is unshared later, once the
// init sits in its cgroup, so that cgroup becomes the namespace's root.
int clone_namespaces(const Spec& spec) {
  if (spec.namespaces == 0) return NAMESPACE_FLAGS;
  return static_cast<int>(spec.namespaces) & ~CLONE_NEWCGROUP;
}

int bring_up_loopback(Error* e) {
  unique_fd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) return fail(e, errno, "socket", "lo");
  struct ifreq ifr {};
  ::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) < 0) return fail(e, errno, "get flags", "lo");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &ifr) < 0) return fail(e, errno, "set flags", "lo");
  return 0;
}

// report_child_error sends the failed step to launch_container and ends the init.
[[noreturn]] void report_child_error(int err_w, const Error& e) {
  std::string msg = std::to_string(e.err) + "\t" + e.step + "\t" + e.path;
  ssize_t ignored = ::write(err_w, msg.data(), msg.size());
  (void)ignored;
  ::_exit(EXEC_FAILED_EXIT);
}

// report_after_start ends a gated init that failed after "created" (see wait_for_start).
[[noreturn]] void report_after_start(const Spec& spec, const Error& e) {
  std::string msg = "berth-runtime: " + spec.id + ": " + e.step + " " + e.path + ": " +
                    errno_name(e.err) + "\n";
  ssize_t ignored = ::write(2, msg.data(), msg.size());
  (void)ignored;
  ::_exit(EXEC_FAILED_EXIT);
}

// wait_for_start closes the error pipe (launch_container reads EOF: "created"), then opens the
// exec fifo for writing through /proc/self/fd, which blocks until `start` opens it for reading,
// and writes one byte so start knows the init passed the gate. No caller listens after
// "created", so from here a failure (even of the exec) can only end the init with 127, after a
// line on the container's own stderr, as runc does.
void wait_for_start(int err_w, int fifo_fd, const Spec& spec) {
  ::close(err_w);
  std::string self = "/proc/self/fd/" + std::to_string(fifo_fd);
  int w = ::open(self.c_str(), O_WRONLY | O_CLOEXEC);
  if (w < 0 || ::write(w, "0", 1) != 1) report_after_start(spec, {errno, "open exec fifo", self});
  ::close(w);
  ::close(fifo_fd);
}

// read_all reads fd to its end (the writers closed it), retrying interrupted reads.
std::string read_all(int fd) {
  std::string out;
  char buf[1024];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

// ChildFds are the child's ends of the pipes launch_container made.
struct ChildFds {
  int sync_r;    // the go byte (and, in a user namespace, "maps written")
  int err_w;     // the failed step; EOF once the command runs
  int out_w;     // stdout / stderr of the command
  int errout_w;
  int status_w;  // berth-init's status pipe; -1 without an init
};

// exec_init execs berth-init (already bound at INIT_PATH_IN_CONTAINER) with the spec's args,
// handing it the error and status pipes at INIT_ERROR_FD and INIT_STATUS_FD, and reports its own
// failure like any exec failure.
[[noreturn]] void exec_init(const Spec& spec, const ChildFds& fds) {
  Error e;
  // Lift both out of the way first, so placing one cannot close the other; err_hi stays the
  // error pipe (close-on-exec) whatever happens to the low numbers.
  int err_hi = ::fcntl(fds.err_w, F_DUPFD_CLOEXEC, 10);
  if (err_hi < 0) {
    fail(&e, errno, "dup", "init pipes");
    report_child_error(fds.err_w, e);
  }
  int status_hi = ::fcntl(fds.status_w, F_DUPFD_CLOEXEC, 10);
  // dup2 clears close-on-exec on the new numbers: these two, and only these, cross the exec.
  if (status_hi < 0 || ::dup2(err_hi, INIT_ERROR_FD) < 0 || ::dup2(status_hi, INIT_STATUS_FD) < 0) {
    fail(&e, errno, "dup2", "init pipes");
    report_child_error(err_hi, e);
  }
  std::vector<std::string> argv{INIT_PATH_IN_CONTAINER};
  argv.insert(argv.end(), spec.args.begin(), spec.args.end());
  execvp_env(argv, spec.env, &e);
  report_child_error(err_hi, e);
}

// arm_parent_death asks the kernel to SIGKILL the init when the shim dies. It is set last,
// because an identity change (setresuid) clears it, and the check after it closes the window
// in which the shim could have died unnoticed: the shim holds the error pipe's read end until
// the command runs, so a write end that polls POLLERR means the shim is gone.
void arm_parent_death(int err_w) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  struct pollfd p = {err_w, POLLOUT, 0};
  if (::poll(&p, 1, 0) == 1 && (p.revents & POLLERR)) ::_exit(EXEC_FAILED_EXIT);
}

// child_main runs in the cloned init; it only returns through _exit. It builds the rootfs while
// the shim creates the cgroup and moves it in (a v1 attach waits for an RCU grace period, so
// overlapping the two hides most of it), and waits for the go byte only before what needs the
// cgroup: the cgroup namespace and the exec.
[[noreturn]] void child_main(const Spec& spec, const std::string& dir, const ChildFds& fds,
                             const LaunchOptions& lopts, const Privileges& priv) {
  const int sync_r = fds.sync_r, err_w = fds.err_w, out_w = fds.out_w, errout_w = fds.errout_w;
  Error e;
  // Until exec nobody, not even a process of the container, may open /proc/<init>/exe (the
  // shim's binary) or ptrace the init (CVE-2019-5736); execve makes a fresh image dumpable.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  ::umask(0);
  char mapped = 0;
  if (spec.user_namespace && ::read(sync_r, &mapped, 1) != 1) ::_exit(EXEC_FAILED_EXIT);
  // The maps only translate ids: the init still holds host root's kuid until it switches to the
  // namespace's root, which is what makes its mounts and files belong to the mapped range.
  if (spec.user_namespace && (::setresgid(0, 0, 0) < 0 || ::setresuid(0, 0, 0) < 0)) {
    fail(&e, errno, "become userns root", "");
    report_child_error(err_w, e);
  }
  // --- create/start gate (1/3): the fifo path is only reachable before pivot_root ---
  int fifo_fd = -1;
  if (!lopts.exec_fifo.empty()) {
    fifo_fd = ::open(lopts.exec_fifo.c_str(), O_PATH | O_CLOEXEC);
    if (fifo_fd < 0) {
      fail(&e, errno, "open exec fifo", lopts.exec_fifo);
      report_child_error(err_w, e);
    }
  }
  int rc = setup_rootfs(spec, dir, &e);
  if (rc == 0 && (clone_namespaces(spec) & CLONE_NEWNET)) rc = bring_up_loopback(&e);
  if (rc == 0 && !spec.hostname.empty() &&
      ::sethostname(spec.hostname.data(), spec.hostname.size()) < 0)
    rc = fail(&e, errno, "sethostname", spec.hostname);
  char go = 0;
  if (rc == 0 && ::read(sync_r, &go, 1) != 1) ::_exit(EXEC_FAILED_EXIT);
  if (rc == 0 && (spec.namespaces == 0 || (spec.namespaces & CLONE_NEWCGROUP)) &&
      ::unshare(CLONE_NEWCGROUP) < 0)
    rc = fail(&e, errno, "unshare cgroupns", "");
  if (rc == 0 && ::chdir(spec.cwd.c_str()) < 0) rc = fail(&e, errno, "chdir", spec.cwd);
  if (rc == 0) rc = drop_privileges(spec, priv.caps, &e);
  if (rc == 0 && !lopts.inherit_stdio) {
    int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd < 0 || ::dup2(null_fd, 0) < 0 || ::dup2(out_w, 1) < 0 || ::dup2(errout_w, 2) < 0)
      rc = fail(&e, errno, "dup2", "stdio");
  }
  // Last of the setup: from here on mount, unshare, keyctl and friends are refused.
  if (rc == 0) rc = install_seccomp(priv.seccomp, &e);
  if (rc == 0) {
    ::umask(022);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // Everything above 2 closes at exec; err_w (already CLOEXEC) survives until then.
    ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
    // --- create/start gate (2/3): report "created", then block until start ---
    if (fifo_fd >= 0) {
      wait_for_start(err_w, fifo_fd, spec);
      execvp_env(spec.args, spec.env, &e);
      report_after_start(spec, e);
    }
    if (lopts.die_with_parent) arm_parent_death(err_w);
    if (!spec.init.empty()) exec_init(spec, fds);
    rc = execvp_env(spec.args, spec.env, &e);
  }
  report_child_error(err_w, e);
}

int parse_child_error(const std::string& msg, Error* e) {
  size_t t1 = msg.find('\t');
  size_t t2 = t1 == std::string::npos ? std::string::npos : msg.find('\t', t1 + 1);
  if (t2 == std::string::npos) return fail(e, EPROTO, "read child error", msg);
  int err = std::atoi(msg.substr(0, t1).c_str());
  return fail(e, err > 0 ? err : EPROTO, msg.substr(t1 + 1, t2 - t1 - 1).c_str(),
              msg.substr(t2 + 1));
}

int make_pipe(unique_fd* r, unique_fd* w, Error* e) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) return fail(e, errno, "pipe", "");
  r->reset(fds[0]);
  w->reset(fds[1]);
  return 0;
}

}  // namespace

int launch_container(const Spec& spec, const std::string& dir, Cgroup& cg, Launched* out,
                     Error* e, const LaunchOptions& opts) {
  // The gate hands "created" back before the exec, which an init would have to relay: not needed.
  if (!spec.init.empty() && !opts.exec_fifo.empty())
    return fail(e, EINVAL, "launch", "an init with a create/start gate");
  for (const char* sub : {"/upper", "/work", "/rootfs"}) {
    if (!spec.rootfs_dir.empty()) break;  // an OCI bundle brings its own rootfs directory
    std::string p = dir + sub;
    if (::mkdir(p.c_str(), 0755) < 0 && errno != EEXIST) return fail(e, errno, "mkdir", p);
  }
  Privileges priv;
  if (int rc = prepare_privileges(spec, &priv, e); rc < 0) return rc;
  if (spec.rootfs_dir.empty()) {
    if (int rc = write_etc_files(spec, dir, e); rc < 0) return rc;
  }
  if (spec.user_namespace) {
    if (int rc = prepare_userns_dirs(spec, dir, e); rc < 0) return rc;
    if (int rc = prepare_userns_mount_points(spec, dir, e); rc < 0) return rc;
  }
  unique_fd out_r, out_w, err_r, err_w, sync_r, sync_w, fail_r, fail_w, status_r, status_w;
  if (int rc = make_pipe(&out_r, &out_w, e); rc < 0) return rc;
  if (int rc = make_pipe(&err_r, &err_w, e); rc < 0) return rc;
  if (int rc = make_pipe(&sync_r, &sync_w, e); rc < 0) return rc;
  if (int rc = make_pipe(&fail_r, &fail_w, e); rc < 0) return rc;
  if (!spec.init.empty()) {
    if (int rc = make_pipe(&status_r, &status_w, e); rc < 0) return rc;
  }

  // A raw clone without CLONE_VM behaves like fork, so the child runs on a copy of this stack.
  int userns = spec.user_namespace ? CLONE_NEWUSER : 0;
  long pid = ::syscall(SYS_clone, clone_namespaces(spec) | userns | SIGCHLD, nullptr, nullptr, nullptr, 0);
  if (pid < 0) return fail(e, errno, "clone", dir);
  if (pid == 0) {
    child_main(spec, dir, {sync_r.get(), fail_w.get(), out_w.get(), err_w.get(), status_w.get()},
               opts, priv);
  }

  sync_r.reset();
  fail_w.reset();
  out_w.reset();
  err_w.reset();
  status_w.reset();
  // Opened while the child is ours and unreaped: the pidfd names this process and no other.
  unique_fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0)));
  // The child is already building its rootfs; the cgroup work below runs alongside it.
  Error cg_err;
  int rc = pidfd.valid() ? 0 : fail(&cg_err, errno, "pidfd_open", dir);
  if (rc == 0) rc = start_init(spec, static_cast<pid_t>(pid), sync_w.get(), &cg_err);
  if (rc == 0) rc = cg.create(spec, &cg_err);
  if (rc == 0) rc = cg.add_process(static_cast<pid_t>(pid), &cg_err);
  if (rc == 0) {
    char go = 1;
    if (::write(sync_w.get(), &go, 1) != 1) rc = fail(&cg_err, errno, "signal child", dir);
  }
  if (rc < 0) {
    ::kill(static_cast<pid_t>(pid), SIGKILL);
    ::waitpid(static_cast<pid_t>(pid), nullptr, 0);
    // The child builds its rootfs meanwhile and may have failed first (then the go byte meets a
    // closed pipe): its own error says why, not our EPIPE.
    if (std::string early = read_all(fail_r.get()); !early.empty()) return parse_child_error(early, e);
    if (e != nullptr) *e = cg_err;
    return rc;
  }
  sync_w.reset();

  std::string msg = read_all(fail_r.get());
  if (!msg.empty()) {
    ::waitpid(static_cast<pid_t>(pid), nullptr, 0);
    return parse_child_error(msg, e);
  }
  out->pid = static_cast<pid_t>(pid);
  out->pidfd = std::move(pidfd);
  out->stdout_r = std::move(out_r);
  out->stderr_r = std::move(err_r);
  out->init_status_r = std::move(status_r);
  return 0;
}

}  // namespace berth

// exec.cc: joining a running container and running one command in it (see exec.h).
#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/close_range.h>
#include <linux/magic.h>

#include <cstdlib>

#include "cgroup.h"
#include "fsutil.h"
#include "seccomp.h"
#include "security.h"
#include "unique_fd.h"

namespace berth {

namespace {

// NAMESPACES lists what to join and in which order: the user namespace first (it grants the
// capabilities the others need), the mount namespace last (it changes what /proc means).
struct Namespace {
  const char* name;
  int flag;
};
constexpr Namespace NAMESPACES[] = {{"user", CLONE_NEWUSER}, {"ipc", CLONE_NEWIPC},
                                    {"uts", CLONE_NEWUTS},   {"net", CLONE_NEWNET},
                                    {"cgroup", CLONE_NEWCGROUP}, {"pid", CLONE_NEWPID},
                                    {"mnt", CLONE_NEWNS}};

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

bool is_dir(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// hierarchy_dir finds the mount of a v1 hierarchy below root from its /proc/PID/cgroup
// controller list ("cpu,cpuacct", "name=systemd"): the joined name, else any one controller.
std::string hierarchy_dir(const std::string& root, const std::string& controllers) {
  std::string joined = controllers;
  if (joined.compare(0, 5, "name=") == 0) joined = joined.substr(5);
  if (is_dir(root + "/" + joined)) return root + "/" + joined;
  size_t start = 0;
  while (start < controllers.size()) {
    size_t comma = controllers.find(',', start);
    if (comma == std::string::npos) comma = controllers.size();
    std::string one = controllers.substr(start, comma - start);
    if (one.compare(0, 5, "name=") == 0) one = one.substr(5);
    if (is_dir(root + "/" + one)) return root + "/" + one;
    start = comma + 1;
  }
  return std::string();
}

// take_stdio makes fd the child's target fd (0-2), keeping it open across the exec.
bool take_stdio(int fd, int target) {
  if (fd < 0) return true;
  if (fd == target) return ::fcntl(fd, F_SETFD, 0) == 0;
  return ::dup2(fd, target) == target;
}

// set_stdio gives the child its session, controlling terminal and fds 0-2 (see ExecStdio).
int set_stdio(const ExecStdio& stdio, Error* e) {
  if ((stdio.new_session || stdio.tty) && ::setsid() < 0) return fail(e, errno, "setsid", "exec");
  if (stdio.tty && ::ioctl(stdio.in, TIOCSCTTY, 0) < 0) return fail(e, errno, "set controlling terminal", "exec");
  if (!take_stdio(stdio.in, 0) || !take_stdio(stdio.out, 1) || !take_stdio(stdio.err, 2))
    return fail(e, errno, "dup2", "exec stdio");
  return 0;
}

// arm_parent_death asks for SIGKILL when the helper dies; the poll after it closes the window
// in which the helper died first: it holds the error pipe's read end until we have exec'd.
void arm_parent_death(int err_w) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  struct pollfd p = {err_w, POLLOUT, 0};
  if (::poll(&p, 1, 0) == 1 && (p.revents & POLLERR)) ::_exit(EXEC_NOT_FOUND_EXIT);
}

// child_main runs in the forked child inside the container: stdio, identity, cwd, then exec.
[[noreturn]] void child_main(const ExecContext& ctx, const ExecRequest& req,
                             const ExecStdio& stdio, int go_r, int err_w) {
  const Spec& c = *ctx.container;
  Error e;
  // Until exec no container process may open /proc/<us>/exe (the shim) or ptrace us
  // (CVE-2019-5736); execve makes the new image dumpable again.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  // Wait until the parent has moved us into the container's cgroups: nothing may run outside.
  char go = 0;
  if (::read(go_r, &go, 1) != 1) ::_exit(EXEC_NOT_FOUND_EXIT);
  const std::string& cwd = req.cwd.empty() ? c.cwd : req.cwd;
  int rc = set_stdio(stdio, &e);
  if (rc == 0 && ::chdir(cwd.c_str()) < 0) rc = fail(&e, errno, "chdir", cwd);
  if (rc == 0) rc = drop_privileges(c, ctx.caps, &e);
  // After the identity change, which would clear it.
  if (rc == 0 && stdio.die_with_parent) arm_parent_death(err_w);
  // Last of the setup, as for the init: no_new_privs and the container's filter.
  if (rc == 0) rc = install_seccomp(ctx.seccomp, &e);
  if (rc < 0) {
    std::string msg = std::to_string(e.err) + "\t" + e.step + "\t" + e.path;
    ssize_t ignored = ::write(err_w, msg.data(), msg.size());
    (void)ignored;
    ::_exit(EXEC_NOT_FOUND_EXIT);
  }
  ::umask(022);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
  execvp_env(req.args, merge_env(c.env, req.env), &e);
  // The command itself could not run: that is the command's outcome (127), told on its stderr.
  std::string msg = e.step + " " + e.path + ": " + errno_name(e.err) + "\n";
  ssize_t ignored = ::write(2, msg.data(), msg.size());
  (void)ignored;
  ::_exit(EXEC_NOT_FOUND_EXIT);
}

// wait_deadline waits for child, killing it once timeout_ms has passed (0: no deadline).
int wait_deadline(pid_t child, uint64_t timeout_ms, ExecOutcome* out, Error* e) {
  unique_fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, child, 0)));
  if (!pidfd.valid()) return fail(e, errno, "pidfd_open", std::to_string(child));
  struct pollfd p = {pidfd.get(), POLLIN, 0};
  int timeout = timeout_ms == 0 ? -1 : static_cast<int>(timeout_ms > INT32_MAX ? INT32_MAX : timeout_ms);
  int ready;
  do {
    ready = ::poll(&p, 1, timeout);
  } while (ready < 0 && errno == EINTR);
  if (ready == 0) {
    ::kill(child, SIGKILL);
    out->timed_out = true;
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) return fail(e, errno, "waitpid", std::to_string(child));
  }
  exec_outcome(status, out);
  return 0;
}

}  // namespace

void exec_outcome(int wait_status, ExecOutcome* out) {
  if (WIFSIGNALED(wait_status)) {
    out->signal = WTERMSIG(wait_status);
    out->exit_code = 128 + out->signal;
  } else {
    out->exit_code = WEXITSTATUS(wait_status);
  }
}

int parse_exec_request(const std::string& text, ExecRequest* out, Error* e) {
  std::vector<WireField> fields;
  if (int rc = split_wire(text, "parse exec request", &fields, e); rc < 0) return rc;
  for (const WireField& field : fields) {
    const std::string& key = field.key;
    const std::string& value = field.value;
    if (key == "arg") {
      out->args.push_back(value);
    } else if (key == "env") {
      if (value.find('=') == std::string::npos) return fail(e, EINVAL, "parse exec request", key);
      out->env.push_back(value);
    } else if (key == "cwd") {
      out->cwd = value;
    } else if (key == "tty") {
      if (value != "0" && value != "1") return fail(e, EINVAL, "parse exec request", key);
      out->tty = value == "1";
    } else if (key == "rows" || key == "cols") {
      char* end = nullptr;
      errno = 0;
      unsigned long n = std::strtoul(value.c_str(), &end, 10);
      if (value.empty() || value[0] == '-' || errno != 0 || *end != '\0' || n > UINT16_MAX)
        return fail(e, EINVAL, "parse exec request", key);
      (key == "rows" ? out->rows : out->cols) = static_cast<uint16_t>(n);
    } else if (key == "timeoutMs") {
      char* end = nullptr;
      errno = 0;
      unsigned long long n = std::strtoull(value.c_str(), &end, 10);
      if (value.empty() || value[0] == '-' || errno != 0 || *end != '\0')
        return fail(e, EINVAL, "parse exec request", key);
      out->timeout_ms = n;
    } else {
      return fail(e, EINVAL, "parse exec request", key);
    }
  }
  if (out->args.empty()) return fail(e, EINVAL, "parse exec request", "arg");
  if (!out->cwd.empty() && out->cwd[0] != '/') return fail(e, EINVAL, "parse exec request", "cwd");
  return 0;
}

std::vector<std::string> merge_env(const std::vector<std::string>& base,
                                   const std::vector<std::string>& extra) {
  std::vector<std::string> out = base;
  for (const std::string& kv : extra) {
    size_t key_len = kv.find('=');
    bool replaced = false;
    for (std::string& cur : out) {
      if (cur.compare(0, key_len + 1, kv, 0, key_len + 1) == 0) {
        cur = kv;
        replaced = true;
        break;
      }
    }
    if (!replaced) out.push_back(kv);
  }
  return out;
}

int open_cgroups(const Spec& container, pid_t init_pid, std::vector<unique_fd>* procs, Error* e) {
  std::string proc = "/proc/" + std::to_string(init_pid) + "/cgroup";
  std::string text;
  if (int rc = read_file(proc, &text, e); rc < 0) return rc;
  std::string root = cgroup_root(container);
  struct statfs st {};
  bool unified_root = ::statfs(root.c_str(), &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    size_t c1 = line.find(':');
    size_t c2 = c1 == std::string::npos ? c1 : line.find(':', c1 + 1);
    if (c2 == std::string::npos) continue;
    std::string controllers = line.substr(c1 + 1, c2 - c1 - 1);
    std::string path = line.substr(c2 + 1);
    std::string base;
    if (line.compare(0, c1, "0") == 0 && controllers.empty()) {
      base = unified_root ? root : (is_dir(root + "/unified") ? root + "/unified" : "");
    } else if (!unified_root) {
      base = hierarchy_dir(root, controllers);
    }
    // A hierarchy that is not mounted under the root cannot be joined and limits nothing here.
    if (base.empty()) continue;
    std::string file = base + path + "/cgroup.procs";
    unique_fd fd(::open(file.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.valid()) return fail(e, errno, "open", file);
    procs->push_back(std::move(fd));
  }
  return 0;
}

int attach_cgroups(const std::vector<unique_fd>& procs, pid_t pid, Error* e) {
  std::string p = std::to_string(pid);
  for (const unique_fd& fd : procs) {
    if (::write(fd.get(), p.data(), p.size()) < 0) return fail(e, errno, "attach cgroup", p);
  }
  return 0;
}

int join_namespaces(pid_t init_pid, Error* e) {
  std::string proc = "/proc/" + std::to_string(init_pid) + "/ns/";
  unique_fd fds[sizeof NAMESPACES / sizeof NAMESPACES[0]];
  for (size_t i = 0; i < sizeof NAMESPACES / sizeof NAMESPACES[0]; i++) {
    std::string theirs = proc + NAMESPACES[i].name;
    // Entering the namespace we are already in is refused for user namespaces and a no-op
    // for the rest: skip it.
    if (same_file(theirs, std::string("/proc/self/ns/") + NAMESPACES[i].name)) continue;
    fds[i].reset(::open(theirs.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fds[i].valid()) return fail(e, errno, "open namespace", theirs);
  }
  for (size_t i = 0; i < sizeof NAMESPACES / sizeof NAMESPACES[0]; i++) {
    if (!fds[i].valid()) continue;
    if (::setns(fds[i].get(), NAMESPACES[i].flag) < 0)
      return fail(e, errno, "setns", proc + NAMESPACES[i].name);
  }
  return 0;
}

int join_container(const Spec& container, pid_t init_pid, ExecContext* ctx, Error* e) {
  ctx->container = &container;
  // The cgroup files are opened now, while /sys is still the host's; the child is attached
  // before it runs anything, and this helper itself never joins (it would use up a pid).
  if (int rc = open_cgroups(container, init_pid, &ctx->cgroup_procs, e); rc < 0) return rc;
  if (int rc = resolve_caps(container.cap_add, container.cap_drop, container.uid, &ctx->caps, e);
      rc < 0) return rc;
  if (container.seccomp) build_default_seccomp(ctx->caps.bounding, &ctx->seccomp);
  return join_namespaces(init_pid, e);
}

int spawn_exec(const ExecContext& ctx, const ExecRequest& req, const ExecStdio& stdio,
               ExecChild* out, Error* e) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) return fail(e, errno, "pipe", "exec");
  unique_fd err_r(fds[0]), err_w(fds[1]);
  if (::pipe2(fds, O_CLOEXEC) < 0) return fail(e, errno, "pipe", "exec");
  unique_fd go_r(fds[0]), go_w(fds[1]);
  pid_t child = ::fork();
  if (child < 0) return fail(e, errno, "fork", "exec");
  if (child == 0) child_main(ctx, req, stdio, go_r.get(), err_w.get());
  err_w.reset();
  go_r.reset();
  unique_fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, child, 0)));
  int setup = pidfd.valid() ? 0 : fail(e, errno, "pidfd_open", std::to_string(child));
  if (setup == 0) setup = attach_cgroups(ctx.cgroup_procs, child, e);
  if (setup == 0) setup = apply_rlimits(child, ctx.container->rlimits, e);
  char go = 1;
  if (setup == 0 && ::write(go_w.get(), &go, 1) != 1) setup = fail(e, errno, "signal exec child", "");
  if (setup < 0) {
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    return setup;
  }
  out->pid = child;
  out->pidfd = std::move(pidfd);
  out->err_r = std::move(err_r);
  return 0;
}

int finish_exec(ExecChild* child, Error* e) {
  std::string msg;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(child->err_r.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    msg.append(buf, static_cast<size_t>(n));
  }
  child->err_r.reset();
  if (msg.empty()) return 0;
  size_t t1 = msg.find('\t');
  size_t t2 = t1 == std::string::npos ? t1 : msg.find('\t', t1 + 1);
  if (t2 == std::string::npos) return fail(e, EPROTO, "read exec error", msg);
  int err = std::atoi(msg.substr(0, t1).c_str());
  return fail(e, err > 0 ? err : EPROTO, msg.substr(t1 + 1, t2 - t1 - 1).c_str(),
              msg.substr(t2 + 1));
}

int exec_in_container(const Spec& container, pid_t init_pid, const ExecRequest& req,
                      ExecOutcome* out, Error* e) {
  ExecContext ctx;
  if (int rc = join_container(container, init_pid, &ctx, e); rc < 0) return rc;
  ExecChild child;
  if (int rc = spawn_exec(ctx, req, ExecStdio{}, &child, e); rc < 0) return rc;
  int rc = wait_deadline(child.pid, req.timeout_ms, out, e);
  if (int setup = finish_exec(&child, e); setup < 0) return setup;
  return rc;
}

}  // namespace berth

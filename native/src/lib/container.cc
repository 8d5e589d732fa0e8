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

#include "fsutil.h"

namespace berth {

namespace {

constexpr int NAMESPACE_FLAGS = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |
                                CLONE_NEWNET;
constexpr const char* DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr int EXEC_FAILED_EXIT = 127;

struct Device {
  const char* name;
  unsigned major;
  unsigned minor;
};
constexpr Device DEVICES[] = {{"null", 1, 3},    {"zero", 1, 5},    {"full", 1, 7},
                              {"random", 1, 8},  {"urandom", 1, 9}, {"tty", 5, 0}};
constexpr const char* DEV_LINKS[][2] = {{"pts/ptmx", "ptmx"},     {"/proc/self/fd", "fd"},
                                        {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
                                        {"/proc/self/fd/2", "stderr"}};

int mount_at(const char* src, const std::string& target, const char* type, unsigned long flags,
             const char* data, const char* step, Error* e) {
  if (::mkdir(target.c_str(), 0755) < 0 && errno != EEXIST) return fail(e, errno, "mkdir", target);
  if (::mount(src, target.c_str(), type, flags, data) < 0) return fail(e, errno, step, target);
  return 0;
}

int setup_dev(const std::string& rootfs, Error* e) {
  std::string dev = rootfs + "/dev";
  if (int rc = mount_at("tmpfs", dev, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k",
                        "mount tmpfs", e); rc < 0) return rc;
  for (const Device& d : DEVICES) {
    std::string p = dev + "/" + d.name;
    if (::mknod(p.c_str(), S_IFCHR | 0666, makedev(d.major, d.minor)) < 0)
      return fail(e, errno, "mknod", p);
  }
  if (int rc = mount_at("devpts", dev + "/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                        "newinstance,ptmxmode=0666,mode=0620", "mount devpts", e); rc < 0) return rc;
  if (int rc = mount_at("shm", dev + "/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                        "mode=1777,size=65536k", "mount tmpfs", e); rc < 0) return rc;
  for (const auto& link : DEV_LINKS) {
    std::string p = dev + "/" + link[1];
    if (::symlink(link[0], p.c_str()) < 0) return fail(e, errno, "symlink", p);
  }
  return 0;
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

// setup_root builds the container's filesystem view and switches into it.
int setup_root(const Spec& spec, const std::string& dir, Error* e) {
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0)
    return fail(e, errno, "make rprivate", "/");
  std::string rootfs = dir + "/rootfs";
  std::string opts = "lowerdir=";
  for (size_t i = 0; i < spec.lower_dirs.size(); i++) {
    if (i > 0) opts += ':';
    opts += spec.lower_dirs[i];
  }
  opts += ",upperdir=" + dir + "/upper,workdir=" + dir + "/work";
  if (::mount("overlay", rootfs.c_str(), "overlay", 0, opts.c_str()) < 0)
    return fail(e, errno, "mount overlay", rootfs);
  if (int rc = mount_at("proc", rootfs + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr,
                        "mount proc", e); rc < 0) return rc;
  if (int rc = setup_dev(rootfs, e); rc < 0) return rc;
  if (int rc = mount_at("sysfs", rootfs + "/sys", "sysfs",
                        MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr, "mount sysfs", e);
      rc < 0) return rc;
  if (::chdir(rootfs.c_str()) < 0) return fail(e, errno, "chdir", rootfs);
  // pivot_root(".", ".") stacks the old root under the new one; detaching it leaves only ours.
  if (::syscall(SYS_pivot_root, ".", ".") < 0) return fail(e, errno, "pivot_root", rootfs);
  if (::umount2(".", MNT_DETACH) < 0) return fail(e, errno, "umount old root", rootfs);
  if (::chdir("/") < 0) return fail(e, errno, "chdir", "/");
  return 0;
}

std::string env_path(const Spec& spec) {
  for (const std::string& kv : spec.env) {
    if (kv.compare(0, 5, "PATH=") == 0) return kv.substr(5);
  }
  return DEFAULT_PATH;
}

// exec_args runs execve with a PATH search when args[0] has no '/', like execvpe but using the
// container's PATH rather than the shim's.
int exec_args(const Spec& spec, Error* e) {
  std::vector<char*> argv;
  for (const std::string& a : spec.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const std::string& kv : spec.env) envp.push_back(const_cast<char*>(kv.c_str()));
  envp.push_back(nullptr);
  const std::string& file = spec.args[0];
  if (file.find('/') != std::string::npos) {
    ::execve(file.c_str(), argv.data(), envp.data());
    return fail(e, errno, "exec", file);
  }
  std::string path = env_path(spec);
  int err = ENOENT;
  size_t start = 0;
  while (start <= path.size()) {
    size_t colon = path.find(':', start);
    if (colon == std::string::npos) colon = path.size();
    std::string d = path.substr(start, colon - start);
    std::string candidate = (d.empty() ? "." : d) + "/" + file;
    ::execve(candidate.c_str(), argv.data(), envp.data());
    // Keep looking past missing entries, but remember a real refusal (EACCES) to report it.
    if (errno != ENOENT && errno != ENOTDIR) err = errno;
    start = colon + 1;
  }
  return fail(e, err, "exec", file);
}

// child_main runs in the cloned init; it only returns through _exit. It builds the rootfs while
// the shim creates the cgroup and moves it in (a v1 attach waits for an RCU grace period, so
// overlapping the two hides most of it), and waits for the go byte only before what needs the
// cgroup: the cgroup namespace and the exec.
[[noreturn]] void child_main(const Spec& spec, const std::string& dir, int sync_r, int err_w,
                             int out_w, int errout_w) {
  Error e;
  ::umask(0);
  int rc = setup_root(spec, dir, &e);
  if (rc == 0) rc = bring_up_loopback(&e);
  if (rc == 0 && !spec.hostname.empty() &&
      ::sethostname(spec.hostname.data(), spec.hostname.size()) < 0)
    rc = fail(&e, errno, "sethostname", spec.hostname);
  char go = 0;
  if (rc == 0 && ::read(sync_r, &go, 1) != 1) ::_exit(EXEC_FAILED_EXIT);
  if (rc == 0 && ::unshare(CLONE_NEWCGROUP) < 0) rc = fail(&e, errno, "unshare cgroupns", "");
  if (rc == 0 && ::chdir(spec.cwd.c_str()) < 0) rc = fail(&e, errno, "chdir", spec.cwd);
  if (rc == 0 && ::setgroups(0, nullptr) < 0) rc = fail(&e, errno, "setgroups", "");
  if (rc == 0 && ::setgid(spec.gid) < 0) rc = fail(&e, errno, "setgid", std::to_string(spec.gid));
  if (rc == 0 && ::setuid(spec.uid) < 0) rc = fail(&e, errno, "setuid", std::to_string(spec.uid));
  if (rc == 0) {
    int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd < 0 || ::dup2(null_fd, 0) < 0 || ::dup2(out_w, 1) < 0 || ::dup2(errout_w, 2) < 0)
      rc = fail(&e, errno, "dup2", "stdio");
  }
  if (rc == 0) {
    ::umask(022);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // Everything above 2 closes at exec; err_w (already CLOEXEC) survives until then.
    ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
    rc = exec_args(spec, &e);
  }
  std::string msg = std::to_string(e.err) + "\t" + e.step + "\t" + e.path;
  ssize_t ignored = ::write(err_w, msg.data(), msg.size());
  (void)ignored;
  ::_exit(EXEC_FAILED_EXIT);
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
                     Error* e) {
  for (const char* sub : {"/upper", "/work", "/rootfs"}) {
    std::string p = dir + sub;
    if (::mkdir(p.c_str(), 0755) < 0 && errno != EEXIST) return fail(e, errno, "mkdir", p);
  }
  unique_fd out_r, out_w, err_r, err_w, sync_r, sync_w, fail_r, fail_w;
  if (int rc = make_pipe(&out_r, &out_w, e); rc < 0) return rc;
  if (int rc = make_pipe(&err_r, &err_w, e); rc < 0) return rc;
  if (int rc = make_pipe(&sync_r, &sync_w, e); rc < 0) return rc;
  if (int rc = make_pipe(&fail_r, &fail_w, e); rc < 0) return rc;

  // A raw clone without CLONE_VM behaves like fork, so the child runs on a copy of this stack.
  long pid = ::syscall(SYS_clone, NAMESPACE_FLAGS | SIGCHLD, nullptr, nullptr, nullptr, 0);
  if (pid < 0) return fail(e, errno, "clone", dir);
  if (pid == 0) child_main(spec, dir, sync_r.get(), fail_w.get(), out_w.get(), err_w.get());

  sync_r.reset();
  fail_w.reset();
  out_w.reset();
  err_w.reset();
  // The child is already building its rootfs; the cgroup work below runs alongside it.
  Error cg_err;
  int rc = cg.create(spec, &cg_err);
  if (rc == 0) rc = cg.add_process(static_cast<pid_t>(pid), &cg_err);
  if (rc == 0) {
    char go = 1;
    if (::write(sync_w.get(), &go, 1) != 1) rc = fail(&cg_err, errno, "signal child", dir);
  }
  if (rc < 0) {
    ::kill(static_cast<pid_t>(pid), SIGKILL);
    ::waitpid(static_cast<pid_t>(pid), nullptr, 0);
    if (e != nullptr) *e = cg_err;
    return rc;
  }
  sync_w.reset();

  std::string msg;
  char buf[1024];
  for (;;) {
    ssize_t n = ::read(fail_r.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    msg.append(buf, static_cast<size_t>(n));
  }
  if (!msg.empty()) {
    ::waitpid(static_cast<pid_t>(pid), nullptr, 0);
    return parse_child_error(msg, e);
  }
  out->pid = static_cast<pid_t>(pid);
  out->stdout_r = std::move(out_r);
  out->stderr_r = std::move(err_r);
  return 0;
}

}  // namespace berth

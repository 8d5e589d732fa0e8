#include "mounts.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <vector>

#include "fsutil.h"
#include "projected.h"
#include "spec.h"
#include "unique_fd.h"

namespace berth {

const char* const MASKED_PATHS[] = {
    "proc/asound",      "proc/acpi",         "proc/kcore",          "proc/keys",
    "proc/latency_stats", "proc/timer_list", "proc/timer_stats",    "proc/sched_debug",
    "proc/scsi",        "sys/firmware",      "sys/devices/virtual/powercap", nullptr};
const char* const READONLY_PATHS[] = {"proc/bus", "proc/fs", "proc/irq", "proc/sys",
                                      "proc/sysrq-trigger", nullptr};

namespace {

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
constexpr const char* DEFAULT_HOSTS =
    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
constexpr const char* HOST_RESOLV_CONF = "/etc/resolv.conf";
// The etc files the shim writes into the container dir, and where the init binds them.
constexpr const char* ETC_FILES[][2] = {
    {"/hostname", "/etc/hostname"}, {"/hosts", "/etc/hosts"}, {"/resolv.conf", "/etc/resolv.conf"}};

// Paths below are relative: the init works from inside the new root (its cwd) until pivot_root.
int mount_at(const char* src, const char* target, const char* type, unsigned long flags,
             const char* data, const char* step, Error* e) {
  if (::mkdir(target, 0755) < 0 && errno != EEXIST) return fail(e, errno, "mkdir", target);
  if (::mount(src, target, type, flags, data) < 0) return fail(e, errno, step, target);
  return 0;
}

// locked_flags returns the flags a bind remount must keep (nosuid, nodev, ...): in a user
// namespace the kernel refuses a remount that would drop them.
unsigned long locked_flags(const char* path) {
  struct statvfs sv {};
  if (::statvfs(path, &sv) < 0) return 0;
  unsigned long flags = 0;
  if (sv.f_flag & ST_NOSUID) flags |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) flags |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  return flags;
}

int remount_readonly(const char* path, Error* e) {
  if (::mount(nullptr, path, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | locked_flags(path),
              nullptr) < 0)
    return fail(e, errno, "remount read-only", path);
  return 0;
}

// make_device creates dev/<name>: mknod normally; in a user namespace, where mknod is refused,
// a bind of the host's node (it is still reachable: pivot_root has not happened yet).
int make_device(const Device& d, bool userns, Error* e) {
  std::string p = std::string("dev/") + d.name;
  if (!userns) {
    if (::mknod(p.c_str(), S_IFCHR | 0666, makedev(d.major, d.minor)) < 0)
      return fail(e, errno, "mknod", p);
    return 0;
  }
  unique_fd f(::open(p.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0666));
  if (!f.valid()) return fail(e, errno, "create", p);
  std::string host = std::string("/dev/") + d.name;
  if (::mount(host.c_str(), p.c_str(), nullptr, MS_BIND, nullptr) < 0)
    return fail(e, errno, "bind device", p);
  return 0;
}

int setup_dev(bool userns, Error* e) {
  if (int rc = mount_at("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_STRICTATIME,
                        "mode=755,size=65536k", "mount tmpfs", e); rc < 0) return rc;
  for (const Device& d : DEVICES) {
    if (int rc = make_device(d, userns, e); rc < 0) return rc;
  }
  if (int rc = mount_at("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                        "newinstance,ptmxmode=0666,mode=0620,gid=5", "mount devpts", e); rc < 0)
    return rc;
  if (int rc = mount_at("shm", "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                        "mode=1777,size=65536k", "mount tmpfs", e); rc < 0) return rc;
  if (int rc = mount_at("mqueue", "dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                        nullptr, "mount mqueue", e); rc < 0) return rc;
  for (const auto& link : DEV_LINKS) {
    std::string p = std::string("dev/") + link[1];
    if (::symlink(link[0], p.c_str()) < 0) return fail(e, errno, "symlink", p);
  }
  return 0;
}

int mount_rootfs(const Spec& spec, const std::string& dir, Error* e) {
  std::string rootfs = spec.rootfs_dir.empty() ? dir + "/rootfs" : spec.rootfs_dir;
  if (!spec.rootfs_dir.empty()) {
    // An OCI bundle's rootfs is a plain directory: bind it onto itself so pivot_root sees a mount.
    if (::mount(rootfs.c_str(), rootfs.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0)
      return fail(e, errno, "bind rootfs", rootfs);
  } else {
    std::string opts = "lowerdir=";
    for (size_t i = 0; i < spec.lower_dirs.size(); i++) {
      if (i > 0) opts += ':';
      opts += spec.lower_dirs[i];
    }
    opts += ",upperdir=" + dir + "/upper,workdir=" + dir + "/work";
    // In a user namespace overlay may not use trusted.* xattrs; user.* ones work on ext4/tmpfs.
    if (spec.user_namespace) opts += ",userxattr";
    if (::mount("overlay", rootfs.c_str(), "overlay", 0, opts.c_str()) < 0)
      return fail(e, errno, "mount overlay", rootfs);
  }
  if (::chdir(rootfs.c_str()) < 0) return fail(e, errno, "chdir", rootfs);
  return 0;
}

int mask_paths(Error* e) {
  for (const char* const* p = MASKED_PATHS; *p != nullptr; p++) {
    struct stat st {};
    if (::lstat(*p, &st) < 0) {
      if (errno == ENOENT) continue;
      return fail(e, errno, "stat masked path", *p);
    }
    int rc = S_ISDIR(st.st_mode)
                 ? ::mount("tmpfs", *p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                           nullptr)
                 : ::mount("dev/null", *p, nullptr, MS_BIND, nullptr);
    if (rc < 0) return fail(e, errno, "mask", *p);
  }
  for (const char* const* p = READONLY_PATHS; *p != nullptr; p++) {
    if (::mount(*p, *p, nullptr, MS_BIND | MS_REC, nullptr) < 0) {
      if (errno == ENOENT) continue;
      return fail(e, errno, "bind read-only path", *p);
    }
    if (int rc = remount_readonly(*p, e); rc < 0) return rc;
  }
  return 0;
}

int bind_files(const Spec& spec, const std::string& dir, Error* e) {
  unique_fd root(::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return fail(e, errno, "open rootfs", dir);
  if (spec.rootfs_dir.empty()) {
    for (const auto& f : ETC_FILES) {
      if (int rc = bind_into_root(root.get(), dir + f[0], f[1], false, e); rc < 0) return rc;
    }
  }
  for (const BindMount& m : spec.mounts) {
    if (int rc = bind_into_root(root.get(), m.source, m.target, m.readonly, e); rc < 0) return rc;
  }
  // Read-only, as Docker binds docker-init: /proc/1/exe then leads to a read-only mount, so a
  // container process can never open the host's binary for writing through it.
  if (!spec.init.empty()) return bind_into_root(root.get(), spec.init, INIT_PATH_IN_CONTAINER, true, e);
  return 0;
}

// resolve_walk is open_in_root's fallback for kernels without openat2: one component at a
// time with O_NOFOLLOW, refusing symlinks and ".." rather than interpreting them.
int resolve_walk(int root_fd, const std::string& rel) {
  unique_fd cur(::openat(root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  size_t pos = 0;
  while (cur.valid() && pos < rel.size()) {
    size_t slash = rel.find('/', pos);
    if (slash == std::string::npos) slash = rel.size();
    std::string comp = rel.substr(pos, slash - pos);
    pos = slash + 1;
    if (comp.empty() || comp == ".") continue;
    if (comp == "..") return -EXDEV;
    cur.reset(::openat(cur.get(), comp.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    struct stat st {};
    if (cur.valid() && ::fstat(cur.get(), &st) == 0 && S_ISLNK(st.st_mode)) return -ELOOP;
  }
  return cur.valid() ? cur.release() : -errno;
}

// resolve opens rel below root_fd with "/" meaning root_fd; returns the fd or -errno.
int resolve(int root_fd, const std::string& rel) {
  static bool have_openat2 = true;
  if (have_openat2) {
    struct open_how how {};
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    long fd = ::syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how);
    if (fd >= 0) return static_cast<int>(fd);
    if (errno != ENOSYS) return -errno;
    have_openat2 = false;
  }
  return resolve_walk(root_fd, rel);
}

}  // namespace

int write_etc_files(const Spec& spec, const std::string& dir, Error* e) {
  if (int rc = write_file(dir + "/hostname", spec.hostname + "\n", e); rc < 0) return rc;
  std::string hosts = spec.hosts;
  if (hosts.empty()) {
    hosts = DEFAULT_HOSTS;
    if (!spec.hostname.empty()) hosts += "127.0.0.1\t" + spec.hostname + "\n";
  }
  if (int rc = write_file(dir + "/hosts", hosts, e); rc < 0) return rc;
  std::string resolv = spec.resolv_conf;
  if (resolv.empty()) {
    std::string host;
    // A missing host file gives an empty one, which resolvers read as "no servers".
    if (read_file(HOST_RESOLV_CONF, &host, nullptr) == 0) {
      // A loopback resolver (systemd-resolved, dnsmasq) is unreachable from the container's
      // own network namespace, as Docker also concludes.
      size_t pos = 0;
      while (pos < host.size()) {
        size_t nl = host.find('\n', pos);
        if (nl == std::string::npos) nl = host.size();
        std::string line = host.substr(pos, nl - pos);
        pos = nl + 1;
        bool loopback = line.rfind("nameserver", 0) == 0 &&
                        (line.find(" 127.") != std::string::npos ||
                         line.find(" ::1") != std::string::npos);
        if (!loopback) resolv += line + "\n";
      }
    }
  }
  return write_file(dir + "/resolv.conf", resolv, e);
}

int open_in_root(int root_fd, const std::string& path, bool create, bool create_dir, Error* e) {
  size_t start = path.find_first_not_of('/');
  std::string rel = start == std::string::npos ? "." : path.substr(start);
  int fd = resolve(root_fd, rel);
  if (fd >= 0) return fd;
  if (fd != -ENOENT || !create) return fail(e, -fd, "open in rootfs", path);
  // Create what is missing one component at a time, each made inside a directory that was
  // itself resolved within the root.
  unique_fd dir(::openat(root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  std::string prefix;
  size_t pos = 0;
  while (pos < rel.size()) {
    size_t slash = rel.find('/', pos);
    if (slash == std::string::npos) slash = rel.size();
    std::string comp = rel.substr(pos, slash - pos);
    bool last = rel.find_first_not_of('/', slash) == std::string::npos;
    pos = slash + 1;
    if (comp.empty()) continue;
    prefix += (prefix.empty() ? "" : "/") + comp;
    fd = resolve(root_fd, prefix);
    if (fd == -ENOENT) {
      int made = 0;
      if (!last || create_dir) {
        made = ::mkdirat(dir.get(), comp.c_str(), 0755);
      } else {
        made = ::openat(dir.get(), comp.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (made >= 0) made = ::close(made);
      }
      if (made < 0) return fail(e, errno, "create in rootfs", prefix);
      fd = resolve(root_fd, prefix);
    }
    if (fd < 0) return fail(e, -fd, "open in rootfs", prefix);
    dir.reset(fd);
  }
  return dir.release();
}

int bind_into_root(int root_fd, const std::string& source, const std::string& target,
                   bool readonly, Error* e) {
  struct stat st {};
  if (::stat(source.c_str(), &st) < 0) return fail(e, errno, "stat bind source", source);
  unique_fd tree(::open_tree(AT_FDCWD, source.c_str(),
                             OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
  if (!tree.valid()) return fail(e, errno, "open_tree", source);
  if (readonly) {
    struct mount_attr attr {};
    attr.attr_set = MOUNT_ATTR_RDONLY;
    if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
      return fail(e, errno, "mount_setattr read-only", source);
  }
  int fd = open_in_root(root_fd, target, true, S_ISDIR(st.st_mode), e);
  if (fd < 0) return fd;
  unique_fd dest(fd);
  if (::move_mount(tree.get(), "", dest.get(), "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return fail(e, errno, "bind mount", target);
  return 0;
}

int setup_rootfs(const Spec& spec, const std::string& dir, Error* e) {
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0)
    return fail(e, errno, "make rprivate", "/");
  if (int rc = mount_rootfs(spec, dir, e); rc < 0) return rc;
  if (int rc = mount_at("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr,
                        "mount proc", e); rc < 0) return rc;
  if (int rc = setup_dev(spec.user_namespace, e); rc < 0) return rc;
  if (int rc = mount_at("sysfs", "sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                        nullptr, "mount sysfs", e); rc < 0) return rc;
  if (int rc = bind_files(spec, dir, e); rc < 0) return rc;
  if (int rc = place_tmpfs_and_files(spec, e); rc < 0) return rc;
  if (int rc = mask_paths(e); rc < 0) return rc;
  // pivot_root(".", ".") stacks the old root under the new one; detaching it leaves only ours.
  if (::syscall(SYS_pivot_root, ".", ".") < 0) return fail(e, errno, "pivot_root", dir);
  if (::umount2(".", MNT_DETACH) < 0) return fail(e, errno, "umount old root", dir);
  if (::chdir("/") < 0) return fail(e, errno, "chdir", "/");
  if (spec.read_only_rootfs) return remount_readonly("/", e);
  return 0;
}

}  // namespace berth

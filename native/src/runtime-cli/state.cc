#include "state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>

#include "../lib/fsutil.h"
#include "../lib/unique_fd.h"
#include "cli_util.h"

namespace berth {

namespace {

using json = nlohmann::json;

constexpr const char* STATE_FILE = "state.json";
constexpr const char* OCI_VERSION = "1.0.2";
// START_WAIT_MS bounds how long `start` waits for the init to pass the gate.
constexpr int START_WAIT_MS = 10000;
// KILL_WAIT_MS bounds how long `delete` waits for a killed init to disappear.
constexpr int KILL_WAIT_MS = 10000;
constexpr int POLL_SLICE_MS = 20;

bool read_proc_stat(pid_t pid, ProcStat* out) {
  std::string text;
  if (read_file("/proc/" + std::to_string(pid) + "/stat", &text, nullptr) < 0) return false;
  return parse_proc_stat(text, out);
}

std::string now_rfc3339() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  char buf[64];
  struct tm tm {};
  ::gmtime_r(&ts.tv_sec, &tm);
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%09ldZ", ts.tv_nsec);
  return buf;
}

void sleep_ms(int ms) {
  struct timespec ts {ms / 1000, (ms % 1000) * 1000000L};
  ::nanosleep(&ts, nullptr);
}

}  // namespace

int save_state(const std::string& dir, RuntimeState* st, Error* e) {
  ProcStat ps;
  if (!read_proc_stat(st->pid, &ps)) return fail(e, ESRCH, "read stat", std::to_string(st->pid));
  st->start_ticks = ps.start_ticks;
  st->created = now_rfc3339();
  json j = state_json(*st, "");
  j.erase("status");
  j["berth"] = {{"startTicks", st->start_ticks}, {"cgroupRoot", st->cgroup_root},
                {"cgroupParent", st->cgroup_parent}, {"cgroupLeaf", st->cgroup_leaf}};
  return write_file_atomic(dir + "/" + STATE_FILE, j.dump() + "\n", e);
}

int load_state(const std::string& dir, RuntimeState* st, Error* e) {
  std::string text;
  std::string path = dir + "/" + STATE_FILE;
  if (int rc = read_file(path, &text, e); rc < 0) return rc;
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("berth")) return fail(e, EINVAL, "parse", path);
  try {
    st->id = j.at("id").get<std::string>();
    st->pid = j.at("pid").get<pid_t>();
    st->bundle = j.at("bundle").get<std::string>();
    st->rootfs = j.value("rootfs", "");
    st->created = j.value("created", "");
    st->annotations = j.value("annotations", std::map<std::string, std::string>());
    const json& b = j.at("berth");
    st->start_ticks = b.at("startTicks").get<uint64_t>();
    st->cgroup_root = b.at("cgroupRoot").get<std::string>();
    st->cgroup_parent = b.at("cgroupParent").get<std::string>();
    st->cgroup_leaf = b.at("cgroupLeaf").get<std::string>();
  } catch (const json::exception&) {
    return fail(e, EINVAL, "parse", path);
  }
  return 0;
}

json state_json(const RuntimeState& st, const std::string& status) {
  json j = {{"ociVersion", OCI_VERSION}, {"id", st.id},         {"status", status},
            {"pid", st.pid},             {"bundle", st.bundle}, {"rootfs", st.rootfs},
            {"created", st.created},     {"owner", ""}};
  j["annotations"] = st.annotations;
  // The OCI state omits pid once the process is gone (runc prints 0).
  if (status == OCI_STATUS_STOPPED) j["pid"] = 0;
  return j;
}

std::string container_status(const std::string& dir, const RuntimeState& st) {
  ProcStat ps;
  bool found = read_proc_stat(st.pid, &ps);
  bool fifo = ::access((dir + "/" + EXEC_FIFO).c_str(), F_OK) == 0;
  return oci_status(found, ps, st.start_ticks, fifo);
}

int open_exec_gate(const std::string& dir, const RuntimeState& st, Error* e) {
  std::string fifo = dir + "/" + EXEC_FIFO;
  // Non-blocking, so a dead init cannot hang start; the init's blocking open then completes.
  unique_fd fd(::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) return fail(e, errno, "open exec fifo", fifo);
  for (int waited = 0; waited < START_WAIT_MS; waited += POLL_SLICE_MS) {
    struct pollfd p = {fd.get(), POLLIN, 0};
    int n = ::poll(&p, 1, POLL_SLICE_MS);
    if (n < 0 && errno != EINTR) return fail(e, errno, "poll exec fifo", fifo);
    if (n > 0 && (p.revents & POLLIN)) {
      char c = 0;
      if (::read(fd.get(), &c, 1) == 1) {
        ::unlink(fifo.c_str());
        return 0;
      }
    }
    if (container_status(dir, st) == OCI_STATUS_STOPPED) break;
  }
  return fail(e, ESRCH, "wait for init at exec fifo", fifo);
}

int signal_container(const std::string& dir, const RuntimeState& st, int sig, Error* e) {
  std::string pid = std::to_string(st.pid);
  unique_fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, st.pid, 0)));
  if (!pidfd.valid()) return fail(e, errno, "pidfd_open", pid);
  // The pidfd pins whichever process had the PID when it was opened; it is the container's only
  // if that process is still the one recorded at create (a reuse changes the start time).
  if (container_status(dir, st) == OCI_STATUS_STOPPED) return fail(e, ESRCH, "kill", pid);
  if (::syscall(SYS_pidfd_send_signal, pidfd.get(), sig, nullptr, 0) < 0)
    return fail(e, errno, "kill", pid);
  return 0;
}

int kill_and_wait(const std::string& dir, const RuntimeState& st, Error* e) {
  if (int rc = signal_container(dir, st, SIGKILL, e); rc < 0 && rc != -ESRCH) return rc;
  for (int waited = 0; waited < KILL_WAIT_MS; waited += POLL_SLICE_MS) {
    if (container_status(dir, st) == OCI_STATUS_STOPPED) return 0;
    sleep_ms(POLL_SLICE_MS);
  }
  return fail(e, ETIMEDOUT, "wait for exit", std::to_string(st.pid));
}

int remove_state_dir(const std::string& dir) {
  for (const char* f : {STATE_FILE, EXEC_FIFO, "state.json.tmp"}) ::unlink((dir + "/" + f).c_str());
  return ::rmdir(dir.c_str()) < 0 && errno != ENOENT ? -errno : 0;
}

std::vector<std::string> list_state_dirs(const std::string& root) {
  std::vector<std::string> out;
  DIR* d = ::opendir(root.c_str());
  if (d == nullptr) return out;
  while (struct dirent* ent = ::readdir(d)) {
    if (ent->d_name[0] != '.' && ent->d_type == DT_DIR) out.push_back(ent->d_name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace berth

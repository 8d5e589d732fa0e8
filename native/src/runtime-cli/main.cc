// berth-runtime: an OCI runtime with runc's command line (create, start, state, kill, delete,
// run, exec, spec, list) on top of berth's native core. No Node: a `run` costs one process.
//
// State lives in <root>/<id>/: state.json (OCI state + what berth needs to find the container
// again) and, between create and start, exec.fifo (the init blocks opening it; see
// LaunchOptions::exec_fifo). Exit codes: 0 ok, 1 failure (`berth-runtime: VERB ID: why`), 2 bad
// usage; `run` and `exec` exit with the container process's code (128+signal when killed).
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../lib/cgroup.h"
#include "../lib/container.h"
#include "../lib/exec.h"
#include "../lib/fsutil.h"
#include "../lib/oci_config.h"
#include "cli_util.h"
#include "state.h"

namespace {

using berth::Error;
using json = nlohmann::json;

constexpr int EXIT_FAILURE_CODE = 1;
constexpr int EXIT_USAGE = 2;
constexpr const char* USAGE =
    "usage: berth-runtime [--root DIR] [--log FILE] [--log-format text|json] COMMAND [ARGS]\n"
    "  create --bundle DIR [--pid-file F] ID   set up a container, blocked before its process\n"
    "  start ID                                run the created container's process\n"
    "  run --bundle DIR [--pid-file F] [-d] ID create + start; waits and exits with its code\n"
    "  state ID | list | kill ID [SIGNAL] | delete [--force] ID | exec ID CMD [ARG...]\n"
    "  spec [--bundle DIR]                     write a default config.json\n";

struct Globals {
  std::string root = "/run/berth-runtime";
  std::string log;
  std::string log_format = "text";
  std::string verb;
  std::string id;
};
Globals g;

struct UsageError {
  std::string msg;
};

// log_line appends to --log (runc's format when json) for the engine that reads it.
void log_line(const char* level, const std::string& msg) {
  if (g.log.empty()) return;
  FILE* f = std::fopen(g.log.c_str(), "a");
  if (f == nullptr) return;
  char ts[40];
  std::time_t now = std::time(nullptr);
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  if (g.log_format == "json")
    std::fprintf(f, "%s\n", json({{"level", level}, {"msg", msg}, {"time", ts}}).dump().c_str());
  else
    std::fprintf(f, "time=\"%s\" level=%s msg=%s\n", ts, level, json(msg).dump().c_str());
  std::fclose(f);
}

int failed(const std::string& why) {
  std::string msg = "berth-runtime: " + g.verb + (g.id.empty() ? "" : " " + g.id) + ": " + why;
  std::fprintf(stderr, "%s\n", msg.c_str());
  log_line("error", msg);
  return EXIT_FAILURE_CODE;
}

int failed(const Error& e) { return failed(berth::describe_error(e)); }

// Args walks one command's arguments: flags first (with values), then positionals.
struct Args {
  std::vector<std::string> rest;
  size_t at = 0;
  bool next_flag(std::string* flag) {
    if (at >= rest.size() || rest[at].size() < 2 || rest[at][0] != '-') return false;
    *flag = rest[at++];
    return true;
  }
  std::string value(const std::string& flag) {
    size_t eq = flag.find('=');
    if (eq != std::string::npos) return flag.substr(eq + 1);
    if (at >= rest.size()) throw UsageError{flag + " needs a value"};
    return rest[at++];
  }
  std::string id() {
    if (at >= rest.size()) throw UsageError{"missing container ID"};
    g.id = rest[at++];
    if (g.id.empty() || g.id.find('/') != std::string::npos || g.id[0] == '.')
      throw UsageError{"invalid container ID \"" + g.id + "\""};
    return g.id;
  }
};

bool is(const std::string& flag, const char* name) {
  return flag == name || flag.compare(0, ::strlen(name) + 1, std::string(name) + "=") == 0;
}

std::string absolute(const std::string& p) {
  if (!p.empty() && p[0] == '/') return p;
  char cwd[4096];
  if (::getcwd(cwd, sizeof cwd) == nullptr) return p;
  return p.empty() || p == "." ? cwd : std::string(cwd) + "/" + p;
}

// CreateFlags are create's and run's options.
struct CreateFlags {
  std::string bundle = ".";
  std::string pid_file;
  bool detach = false;
};

CreateFlags parse_create(Args& a, bool is_run) {
  CreateFlags f;
  std::string flag;
  while (a.next_flag(&flag)) {
    if (is(flag, "--bundle") || flag == "-b") f.bundle = a.value(flag);
    else if (is(flag, "--pid-file")) f.pid_file = a.value(flag);
    else if (is(flag, "--console-socket")) {
      a.value(flag);
      throw UsageError{"--console-socket: terminals are not supported yet"};
    } else if (is_run && (flag == "-d" || flag == "--detach")) f.detach = true;
    else if (flag == "--no-pivot" || flag == "--no-new-keyring") continue;
    else throw UsageError{"unknown flag " + flag};
  }
  a.id();
  f.bundle = absolute(f.bundle);
  return f;
}

std::unique_ptr<berth::Cgroup> cgroup_for(const berth::Spec& spec, const std::string& leaf) {
  berth::Spec named = spec;
  named.id = leaf;
  return berth::make_cgroup(named);
}

// create_container sets up a container; with gate it blocks before exec until `start`.
int create_container(const CreateFlags& f, bool gate, berth::RuntimeState* st,
                     berth::Launched* run, std::unique_ptr<berth::Cgroup>* cg_out) {
  Error e;
  berth::OciConfig cfg;
  if (berth::load_oci_config(f.bundle, g.id, &cfg, &e) < 0) return failed(e);
  for (const std::string& n : cfg.notes) log_line("warning", g.id + ": " + n);
  std::string dir = g.root + "/" + g.id;
  if (berth::mkdir_p(g.root, 0711, &e) < 0) return failed(e);
  if (::mkdir(dir.c_str(), 0711) < 0)
    return failed(errno == EEXIST ? "container already exists" : berth::describe_error({errno, "mkdir", dir}));
  berth::LaunchOptions opts;
  opts.inherit_stdio = true;
  if (gate) {
    opts.exec_fifo = dir + "/" + berth::EXEC_FIFO;
    // 0622: the init may have dropped to an unprivileged user by the time it opens the fifo.
    if (::mkfifo(opts.exec_fifo.c_str(), 0622) < 0 || ::chmod(opts.exec_fifo.c_str(), 0622) < 0) {
      berth::remove_state_dir(dir);
      return failed(Error{errno, "mkfifo", opts.exec_fifo});
    }
  }
  std::unique_ptr<berth::Cgroup> cg = cgroup_for(cfg.spec, cfg.cgroup_leaf);
  if (berth::launch_container(cfg.spec, dir, *cg, run, &e, opts) < 0) {
    cg->destroy(nullptr);
    berth::remove_state_dir(dir);
    return failed(e);
  }
  st->id = g.id;
  st->pid = run->pid;
  st->bundle = f.bundle;
  st->rootfs = cfg.spec.rootfs_dir;
  st->annotations = cfg.annotations;
  st->cgroup_parent = cfg.spec.cgroup_parent;
  st->cgroup_leaf = cfg.cgroup_leaf;
  st->cgroup_root = berth::cgroup_root(cfg.spec);
  if (berth::save_state(dir, st, &e) < 0 ||
      (!f.pid_file.empty() && berth::write_file_atomic(absolute(f.pid_file), std::to_string(run->pid), &e) < 0)) {
    ::kill(run->pid, SIGKILL);
    ::waitpid(run->pid, nullptr, 0);
    cg->destroy(nullptr);
    berth::remove_state_dir(dir);
    return failed(e);
  }
  *cg_out = std::move(cg);
  return 0;
}

// forward_pidfd is the running container's pidfd: a signal that arrives after the init was
// reaped then reaches nobody, never a process that reused its PID.
int forward_pidfd = -1;
void forward_signal(int sig) {
  if (forward_pidfd >= 0) ::syscall(SYS_pidfd_send_signal, forward_pidfd, sig, nullptr, 0);
}

int cmd_create(Args& a) {
  CreateFlags f = parse_create(a, false);
  berth::RuntimeState st;
  berth::Launched run;
  std::unique_ptr<berth::Cgroup> cg;
  return create_container(f, true, &st, &run, &cg);
}

int cmd_run(Args& a) {
  CreateFlags f = parse_create(a, true);
  berth::RuntimeState st;
  berth::Launched run;
  std::unique_ptr<berth::Cgroup> cg;
  if (int rc = create_container(f, false, &st, &run, &cg); rc != 0) return rc;
  if (f.detach) return 0;
  forward_pidfd = run.pidfd.get();
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) ::signal(sig, forward_signal);
  int status = 0;
  while (::waitpid(run.pid, &status, 0) < 0 && errno == EINTR) {
  }
  cg->destroy(nullptr);
  berth::remove_state_dir(g.root + "/" + g.id);
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

int load(berth::RuntimeState* st) {
  Error e;
  int rc = berth::load_state(g.root + "/" + g.id, st, &e);
  if (rc == -ENOENT) return failed("container does not exist");
  if (rc < 0) return failed(e);
  return 0;
}

int cmd_start(Args& a) {
  a.id();
  berth::RuntimeState st;
  if (int rc = load(&st); rc != 0) return rc;
  std::string status = berth::container_status(g.root + "/" + g.id, st);
  if (status != berth::OCI_STATUS_CREATED) return failed("cannot start a container that is " + status);
  Error e;
  if (berth::open_exec_gate(g.root + "/" + g.id, st, &e) < 0) return failed(e);
  return 0;
}

int cmd_state(Args& a) {
  a.id();
  berth::RuntimeState st;
  if (int rc = load(&st); rc != 0) return rc;
  std::string status = berth::container_status(g.root + "/" + g.id, st);
  std::printf("%s\n", berth::state_json(st, status).dump(2).c_str());
  return 0;
}

int cmd_kill(Args& a) {
  std::string flag;
  while (a.next_flag(&flag)) {
    if (flag != "--all" && flag != "-a") throw UsageError{"unknown flag " + flag};
  }
  a.id();
  int sig = SIGTERM;
  if (a.at < a.rest.size()) {
    sig = berth::parse_signal(a.rest[a.at]);
    if (sig < 0) throw UsageError{"unknown signal \"" + a.rest[a.at] + "\""};
  }
  berth::RuntimeState st;
  if (int rc = load(&st); rc != 0) return rc;
  Error e;
  int rc = berth::signal_container(g.root + "/" + g.id, st, sig, &e);
  if (rc == -ESRCH) return failed("container not running");
  if (rc < 0) return failed(e);
  return 0;
}

int cmd_delete(Args& a) {
  bool force = false;
  std::string flag;
  while (a.next_flag(&flag)) {
    if (flag == "--force" || flag == "-f") force = true;
    else throw UsageError{"unknown flag " + flag};
  }
  a.id();
  berth::RuntimeState st;
  if (int rc = load(&st); rc != 0) return rc;
  std::string dir = g.root + "/" + g.id;
  std::string status = berth::container_status(dir, st);
  if (status == berth::OCI_STATUS_RUNNING && !force)
    return failed("cannot delete a running container (use --force)");
  Error e;
  if (status != berth::OCI_STATUS_STOPPED && berth::kill_and_wait(dir, st, &e) < 0) return failed(e);
  berth::Spec spec;
  spec.cgroup_root = st.cgroup_root;
  spec.cgroup_parent = st.cgroup_parent;
  if (cgroup_for(spec, st.cgroup_leaf)->destroy(&e) < 0) return failed(e);
  if (berth::remove_state_dir(dir) < 0) return failed(Error{errno, "remove", dir});
  return 0;
}

int cmd_exec(Args& a) {
  berth::ExecRequest req;
  std::string flag;
  while (a.next_flag(&flag)) {
    if (is(flag, "--cwd")) req.cwd = a.value(flag);
    else if (is(flag, "--env") || flag == "-e") req.env.push_back(a.value(flag));
    else throw UsageError{"unknown flag " + flag};
  }
  a.id();
  req.args.assign(a.rest.begin() + static_cast<long>(a.at), a.rest.end());
  if (req.args.empty()) throw UsageError{"exec needs a command"};
  berth::RuntimeState st;
  if (int rc = load(&st); rc != 0) return rc;
  if (berth::container_status(g.root + "/" + g.id, st) != berth::OCI_STATUS_RUNNING)
    return failed("container is not running");
  Error e;
  berth::OciConfig cfg;
  if (berth::load_oci_config(st.bundle, g.id, &cfg, &e) < 0) return failed(e);
  cfg.spec.cgroup_root = st.cgroup_root;
  berth::ExecOutcome out;
  if (berth::exec_in_container(cfg.spec, st.pid, req, &out, &e) < 0) return failed(e);
  return out.exit_code;
}

int cmd_list(Args& a) {
  std::string flag;
  bool as_json = false;
  while (a.next_flag(&flag)) {
    if (flag == "--format=json" || (is(flag, "--format") && a.value(flag) == "json")) as_json = true;
    else if (flag != "-q" && flag != "--quiet" && !is(flag, "--format")) throw UsageError{"unknown flag " + flag};
  }
  json all = json::array();
  std::printf(as_json ? "" : "%-20s %-8s %-8s %s\n", "ID", "PID", "STATUS", "BUNDLE");
  for (const std::string& id : berth::list_state_dirs(g.root)) {
    berth::RuntimeState st;
    if (berth::load_state(g.root + "/" + id, &st, nullptr) < 0) continue;
    std::string status = berth::container_status(g.root + "/" + id, st);
    if (as_json) all.push_back(berth::state_json(st, status));
    else std::printf("%-20s %-8d %-8s %s\n", id.c_str(), st.pid, status.c_str(), st.bundle.c_str());
  }
  if (as_json) std::printf("%s\n", all.dump().c_str());
  return 0;
}

int cmd_spec(Args& a) {
  std::string bundle = ".";
  std::string flag;
  while (a.next_flag(&flag)) {
    if (is(flag, "--bundle") || flag == "-b") bundle = a.value(flag);
    else if (flag != "--rootless") throw UsageError{"unknown flag " + flag};
  }
  std::string path = absolute(bundle) + "/config.json";
  if (::access(path.c_str(), F_OK) == 0) return failed("File " + path + " exists. Remove it first");
  Error e;
  if (berth::write_file(path, berth::default_oci_config(), &e) < 0) return failed(e);
  return 0;
}

int dispatch(Args& a) {
  if (g.verb == "create") return cmd_create(a);
  if (g.verb == "start") return cmd_start(a);
  if (g.verb == "run") return cmd_run(a);
  if (g.verb == "state") return cmd_state(a);
  if (g.verb == "kill") return cmd_kill(a);
  if (g.verb == "delete") return cmd_delete(a);
  if (g.verb == "exec") return cmd_exec(a);
  if (g.verb == "list") return cmd_list(a);
  if (g.verb == "spec") return cmd_spec(a);
  throw UsageError{"unknown command \"" + g.verb + "\""};
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  a.rest.assign(argv + 1, argv + argc);
  try {
    std::string flag;
    while (a.next_flag(&flag)) {
      if (is(flag, "--root")) g.root = absolute(a.value(flag));
      else if (is(flag, "--log")) g.log = a.value(flag);
      else if (is(flag, "--log-format")) g.log_format = a.value(flag);
      else if (flag == "--systemd-cgroup") {
        g.verb = "berth-runtime";
        std::fprintf(stderr, "berth-runtime: --systemd-cgroup is not supported: berth manages cgroupfs itself\n");
        return EXIT_FAILURE_CODE;
      } else if (flag == "--debug") continue;
      else if (flag == "--version" || flag == "-v") {
        std::printf("berth-runtime version 0.1.0\nspec: 1.0.2\n");
        return 0;
      } else if (flag == "--help" || flag == "-h") {
        std::printf("%s", USAGE);
        return 0;
      } else throw UsageError{"unknown global flag " + flag};
    }
    if (g.log_format != "text" && g.log_format != "json")
      throw UsageError{"--log-format must be text or json"};
    if (a.at >= a.rest.size()) throw UsageError{"missing command"};
    g.verb = a.rest[a.at++];
    return dispatch(a);
  } catch (const UsageError& u) {
    std::fprintf(stderr, "berth-runtime: %s\n%s", u.msg.c_str(), USAGE);
    return EXIT_USAGE;
  }
}

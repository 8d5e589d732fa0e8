// state.h: berth-runtime's per-container state dir, <root>/<id>/: state.json and exec.fifo.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../lib/error.h"

namespace berth {

// EXEC_FIFO is the gate's fifo in the state dir; it exists from create until start.
constexpr const char* EXEC_FIFO = "exec.fifo";

// RuntimeState is what berth-runtime records at create to find the container again.
struct RuntimeState {
  std::string id;
  pid_t pid = -1;
  uint64_t start_ticks = 0;  // /proc/<pid>/stat start time, so a reused pid reads as stopped
  std::string bundle;
  std::string rootfs;
  std::string created;  // RFC 3339
  std::map<std::string, std::string> annotations;
  std::string cgroup_root;
  std::string cgroup_parent;
  std::string cgroup_leaf;
};

// save_state fills start_ticks and created, then writes <dir>/state.json atomically.
int save_state(const std::string& dir, RuntimeState* st, Error* e);

// load_state reads <dir>/state.json; -ENOENT when the container does not exist.
int load_state(const std::string& dir, RuntimeState* st, Error* e);

// state_json is the OCI state document (`berth-runtime state`).
nlohmann::json state_json(const RuntimeState& st, const std::string& status);

// container_status is created, running or stopped (see oci_status).
std::string container_status(const std::string& dir, const RuntimeState& st);

// open_exec_gate opens the fifo for reading, which lets the blocked init through to execve,
// waits (bounded) for its byte and removes the fifo.
int open_exec_gate(const std::string& dir, const RuntimeState& st, Error* e);

// signal_container sends sig to the container's init through a pidfd that is checked, after it
// was opened, to name the recorded process (its start time): a reused PID is never signalled.
// -ESRCH when the container is not running.
int signal_container(const std::string& dir, const RuntimeState& st, int sig, Error* e);

// kill_and_wait SIGKILLs the init and waits, bounded, until it is gone or a zombie.
int kill_and_wait(const std::string& dir, const RuntimeState& st, Error* e);

// remove_state_dir removes the state dir and the files berth-runtime puts in it.
int remove_state_dir(const std::string& dir);

// list_state_dirs names the containers under root, sorted.
std::vector<std::string> list_state_dirs(const std::string& root);

}  // namespace berth

// control.h: the shim's control channel, `<container dir>/shim.sock`.
//
// The shim is the container init's parent: only it can signal the init without a PID race
// (through a pidfd it opened while the init was its unreaped child), and it sees the exit first.
// So nobody else signals a container by PID: they ask the shim, and the shim pushes the exit
// (containerd's shim API: Kill and Wait go through the shim, exits are events).
//
// Protocol: a unix stream socket, mode 0600 (root only), one request or reply per line ('\n'):
//   kill <signo>  -> `ok`, or `err <ERRNO>`: `err ESRCH` once the init has exited (then no
//                    signal is sent at all), `err EINVAL` for a bad number
//   wait          -> no reply now; once the container has exited and its exit record is written:
//                    `exit <code> <signal> <oomKilled 0|1>` (at once when that already happened)
//   other         -> `err EINVAL`
// Replies to one client come in request order; an `exit` line may come between them. A line
// longer than MAX_CONTROL_LINE_BYTES drops the client, and so does a client over
// MAX_CONTROL_CLIENTS. The socket goes away right after the exit is pushed, just before the shim
// exits: a client that cannot connect reads the exit record (`<dir>/exit`) instead.
#pragma once

#include <poll.h>
#include <sys/types.h>
#include <sys/un.h>

#include <string>
#include <vector>

#include "error.h"
#include "unique_fd.h"

namespace berth {

// CONTROL_SOCKET is the socket's name in the container dir.
constexpr const char* CONTROL_SOCKET = "shim.sock";
// MAX_CONTROL_LINE_BYTES bounds one request; every valid one is a few bytes.
constexpr size_t MAX_CONTROL_LINE_BYTES = 64;
// MAX_CONTROL_CLIENTS bounds the connections one shim serves (the agent holds one or two).
constexpr size_t MAX_CONTROL_CLIENTS = 32;

// ExitInfo is how a container ended, as pushed to waiters and written to the exit record.
struct ExitInfo {
  int code = 0;    // exit code, or 128 + signal
  int signal = 0;  // the signal that killed it, 0 when it exited
  bool oom_killed = false;
};

// exit_info maps a wait status (and the cgroup's OOM flag) to an ExitInfo.
ExitInfo exit_info(int wait_status, bool oom_killed);

// format_exit renders the pushed line, `exit <code> <signal> <0|1>\n`.
std::string format_exit(const ExitInfo& info);

// ControlRequest is one parsed request line.
struct ControlRequest {
  enum Verb { KILL, WAIT } verb = WAIT;
  int signal = 0;  // KILL: 1..64
};

// parse_control_request parses one line (without its '\n'); EINVAL for anything malformed.
int parse_control_request(const std::string& line, ControlRequest* out, Error* e);

// unix_address fills addr for path. A path longer than sun_path is reached as
// /proc/self/fd/<dir>/<name> through an O_PATH fd of its directory, which *dir_fd keeps open
// and must outlive the bind or connect.
int unix_address(const std::string& path, struct sockaddr_un* addr, unique_fd* dir_fd, Error* e);

// ControlTarget is what the channel acts on: the shim's one container.
class ControlTarget {
 public:
  virtual ~ControlTarget() = default;
  // signal sends sig to the container's init; 0 or -errno (-ESRCH once it has exited).
  virtual int signal(int sig) = 0;
};

// ControlServer is the shim's end: it listens, answers kill and remembers waiters.
class ControlServer {
 public:
  ControlServer() = default;
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;
  ~ControlServer() { close(); }

  // listen binds path (replacing a stale socket file) with mode 0600 and starts listening.
  int listen(const std::string& path, Error* e);
  // add_poll_fds appends the fds to poll (the listener, then every client) to out.
  void add_poll_fds(std::vector<struct pollfd>* out) const;
  // handle serves the fds add_poll_fds appended at pfds[0..n), as poll left them.
  void handle(const struct pollfd* pfds, size_t n, ControlTarget& target);
  // publish_exit remembers the exit and pushes it to every waiting client.
  void publish_exit(const ExitInfo& info);
  // close removes the socket file and drops every client.
  void close();

 private:
  struct Client {
    unique_fd fd;
    std::string in;
    bool waiting = false;
  };
  void accept_clients();
  // serve reads what client i sent and answers it; false when the client must be dropped.
  bool serve(Client& c, ControlTarget& target);
  bool send_line(Client& c, const std::string& line);

  std::string path_;
  unique_fd listener_;
  std::vector<Client> clients_;
  bool exited_ = false;
  ExitInfo exit_;
};

// connect_control connects to a shim's socket (the client end, for berth's own tools and tests).
int connect_control(const std::string& path, unique_fd* out, Error* e);

}  // namespace berth

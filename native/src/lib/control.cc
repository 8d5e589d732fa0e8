// control.cc: the shim's control channel (see control.h).
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "fsutil.h"

namespace berth {

namespace {

constexpr int LISTEN_BACKLOG = 16;
constexpr int MAX_SIGNAL = 64;  // SIGRTMAX on Linux
constexpr size_t READ_CHUNK_BYTES = 256;

bool parse_signal_number(const std::string& text, int* out) {
  if (text.empty() || text.size() > 2) return false;
  int n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + (c - '0');
  }
  if (n < 1 || n > MAX_SIGNAL) return false;
  *out = n;
  return true;
}

}  // namespace

ExitInfo exit_info(int wait_status, bool oom_killed) {
  ExitInfo info;
  if (WIFSIGNALED(wait_status)) {
    info.signal = WTERMSIG(wait_status);
    info.code = 128 + info.signal;
  } else {
    info.code = WEXITSTATUS(wait_status);
  }
  info.oom_killed = oom_killed;
  return info;
}

std::string format_exit(const ExitInfo& info) {
  return "exit " + std::to_string(info.code) + " " + std::to_string(info.signal) + " " +
         (info.oom_killed ? "1" : "0") + "\n";
}

int parse_control_request(const std::string& line, ControlRequest* out, Error* e) {
  if (line == "wait") {
    out->verb = ControlRequest::WAIT;
    return 0;
  }
  if (line.compare(0, 5, "kill ") == 0 && parse_signal_number(line.substr(5), &out->signal)) {
    out->verb = ControlRequest::KILL;
    return 0;
  }
  return fail(e, EINVAL, "parse control request", line.substr(0, MAX_CONTROL_LINE_BYTES));
}

int unix_address(const std::string& path, struct sockaddr_un* addr, unique_fd* dir_fd, Error* e) {
  ::memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  std::string via = path;
  if (path.size() >= sizeof addr->sun_path) {
    size_t slash = path.find_last_of('/');
    if (slash == std::string::npos) return fail(e, ENAMETOOLONG, "socket address", path);
    std::string dir = slash == 0 ? "/" : path.substr(0, slash);
    dir_fd->reset(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir_fd->valid()) return fail(e, errno, "open", dir);
    via = "/proc/self/fd/" + std::to_string(dir_fd->get()) + path.substr(slash);
    if (via.size() >= sizeof addr->sun_path) return fail(e, ENAMETOOLONG, "socket address", path);
  }
  ::memcpy(addr->sun_path, via.data(), via.size());
  return 0;
}

int ControlServer::listen(const std::string& path, Error* e) {
  struct sockaddr_un addr;
  unique_fd dir;
  if (int rc = unix_address(path, &addr, &dir, e); rc < 0) return rc;
  unique_fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!s.valid()) return fail(e, errno, "socket", path);
  // Born 0600: connecting needs write permission, so only root may ever talk to the shim.
  mode_t old = ::umask(0177);
  int rc = ::bind(s.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof addr);
  int err = errno;
  ::umask(old);
  if (rc < 0) return fail(e, err, "bind", path);
  path_ = path;
  if (::listen(s.get(), LISTEN_BACKLOG) < 0) {
    err = errno;
    ::unlink(path.c_str());
    return fail(e, err, "listen", path);
  }
  listener_ = std::move(s);
  return 0;
}

void ControlServer::add_poll_fds(std::vector<struct pollfd>* out) const {
  if (!listener_.valid()) return;
  out->push_back({listener_.get(), POLLIN, 0});
  for (const Client& c : clients_) out->push_back({c.fd.get(), POLLIN, 0});
}

void ControlServer::handle(const struct pollfd* pfds, size_t n, ControlTarget& target) {
  if (!listener_.valid() || n == 0) return;
  // Clients first, by the index add_poll_fds gave them; accepting appends after them.
  std::vector<bool> drop(clients_.size(), false);
  for (size_t i = 0; i + 1 < n && i < clients_.size(); i++) {
    if (pfds[i + 1].revents != 0 && !serve(clients_[i], target)) drop[i] = true;
  }
  for (size_t i = drop.size(); i-- > 0;) {
    if (drop[i]) clients_.erase(clients_.begin() + static_cast<long>(i));
  }
  if (pfds[0].revents & POLLIN) accept_clients();
}

void ControlServer::accept_clients() {
  for (;;) {
    unique_fd c(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!c.valid()) return;  // EAGAIN: none left; anything else: the client is gone already
    if (clients_.size() >= MAX_CONTROL_CLIENTS) continue;  // closed at once
    Client client;
    client.fd = std::move(c);
    clients_.push_back(std::move(client));
  }
}

bool ControlServer::serve(Client& c, ControlTarget& target) {
  char buf[READ_CHUNK_BYTES];
  ssize_t got = ::read(c.fd.get(), buf, sizeof buf);
  if (got < 0) return errno == EAGAIN || errno == EINTR;
  if (got == 0) return false;
  c.in.append(buf, static_cast<size_t>(got));
  for (size_t nl = c.in.find('\n'); nl != std::string::npos; nl = c.in.find('\n')) {
    std::string line = c.in.substr(0, nl);
    c.in.erase(0, nl + 1);
    if (line.size() > MAX_CONTROL_LINE_BYTES) return false;
    ControlRequest req;
    if (parse_control_request(line, &req, nullptr) < 0) {
      if (!send_line(c, "err EINVAL\n")) return false;
      continue;
    }
    if (req.verb == ControlRequest::KILL) {
      // After the exit the init is reaped: nothing is signalled, whatever has its PID now.
      int rc = exited_ ? -ESRCH : target.signal(req.signal);
      if (!send_line(c, rc == 0 ? std::string("ok\n") : "err " + errno_name(-rc) + "\n")) return false;
    } else if (exited_) {
      if (!send_line(c, format_exit(exit_))) return false;
    } else {
      c.waiting = true;
    }
  }
  return c.in.size() <= MAX_CONTROL_LINE_BYTES;
}

bool ControlServer::send_line(Client& c, const std::string& line) {
  // Replies are a few bytes into an empty socket buffer; a client that lets it fill is dropped.
  ssize_t n = ::send(c.fd.get(), line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  return n == static_cast<ssize_t>(line.size());
}

void ControlServer::publish_exit(const ExitInfo& info) {
  exited_ = true;
  exit_ = info;
  std::string line = format_exit(info);
  for (Client& c : clients_) {
    if (c.waiting) send_line(c, line);
    c.waiting = false;
  }
}

void ControlServer::close() {
  if (listener_.valid() && !path_.empty()) ::unlink(path_.c_str());
  listener_.reset();
  clients_.clear();
}

int connect_control(const std::string& path, unique_fd* out, Error* e) {
  struct sockaddr_un addr;
  unique_fd dir;
  if (int rc = unix_address(path, &addr, &dir, e); rc < 0) return rc;
  unique_fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) return fail(e, errno, "socket", path);
  int rc;
  do {
    rc = ::connect(s.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof addr);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return fail(e, errno, "connect", path);
  *out = std::move(s);
  return 0;
}

}  // namespace berth

// exec_io.cc: pty, control messages and the pump of an interactive exec (see exec_io.h).
#include "exec_io.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <array>
#include <vector>

#include "spec.h"

namespace berth {

namespace {

// parse_uint parses a decimal without sign, at most max.
bool parse_uint(const std::string& s, unsigned long max, unsigned long* out) {
  if (s.empty() || s[0] < '0' || s[0] > '9') return false;
  char* end = nullptr;
  errno = 0;
  unsigned long n = std::strtoul(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || n > max) return false;
  *out = n;
  return true;
}

int set_nonblock(int fd) {
  if (fd < 0) return 0;
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return -errno;
  return 0;
}

// Pump is one direction: bytes read from *src wait in buf until *dst has taken them all, and
// only then is *src read again. Both fds belong to the ExecIo.
struct Pump {
  unique_fd* src = nullptr;
  unique_fd* dst = nullptr;
  std::vector<char> buf;
  size_t off = 0;
  size_t len = 0;
  bool eof = false;   // src gave EOF (or EIO: a pty master whose slaves are all closed)
  bool done = false;  // nothing more will move this way

  bool wants_read() const { return !done && !eof && len == 0 && src->valid() && dst->valid(); }
  bool wants_write() const { return !done && len > 0 && dst->valid(); }
};

// read_some fills p's empty buffer from its source.
void read_some(Pump* p) {
  if (p->buf.empty()) p->buf.resize(PUMP_CHUNK_BYTES);
  ssize_t n = ::read(p->src->get(), p->buf.data(), p->buf.size());
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    p->eof = true;
    return;
  }
  p->off = 0;
  p->len = static_cast<size_t>(n);
}

// write_some writes what p holds; false when the destination is gone (EPIPE and the like).
bool write_some(Pump* p) {
  while (p->len > 0) {
    ssize_t n = ::write(p->dst->get(), p->buf.data() + p->off, p->len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    if (n <= 0) return false;
    p->off += static_cast<size_t>(n);
    p->len -= static_cast<size_t>(n);
  }
  return true;
}

// Loop is run_exec_io's state.
class Loop {
 public:
  explicit Loop(ExecIo* io) : io_(io), tty_(io->master.valid()) {
    in_.src = &io->agent_in;
    in_.dst = tty_ ? &io->master : &io->child_in;
    out_.src = tty_ ? &io->master : &io->child_out;
    out_.dst = &io->agent_out;
    err_.src = &io->child_err;
    err_.dst = &io->agent_err;
    if (!in_.src->valid()) finish_in();
    if (!err_.src->valid()) {
      err_.done = true;
      err_.dst->reset();
    }
  }

  int run(int* wait_status, Error* e) {
    for (unique_fd* fd : all_fds()) {
      if (int rc = set_nonblock(fd->get()); rc < 0) return fail(e, -rc, "set nonblocking", "exec io");
    }
    if (io_->control.valid()) take_control_lines();
    std::vector<struct pollfd> pfds;
    for (;;) {
      settle();
      if (exited_ && out_.done && err_.done) break;
      pfds.clear();
      add(&pfds, in_.wants_read() ? in_.src->get() : -1, POLLIN, &at_in_r_);
      add(&pfds, in_.wants_write() ? in_.dst->get() : -1, POLLOUT, &at_in_w_);
      add(&pfds, out_.wants_read() ? out_.src->get() : -1, POLLIN, &at_out_r_);
      add(&pfds, out_.wants_write() ? out_.dst->get() : -1, POLLOUT, &at_out_w_);
      add(&pfds, err_.wants_read() ? err_.src->get() : -1, POLLIN, &at_err_r_);
      add(&pfds, err_.wants_write() ? err_.dst->get() : -1, POLLOUT, &at_err_w_);
      add(&pfds, io_->control.get(), POLLIN, &at_control_);
      add(&pfds, exited_ ? -1 : io_->child_pidfd, POLLIN, &at_pidfd_);
      int ready = ::poll(pfds.data(), pfds.size(), exited_ ? PUMP_DRAIN_AFTER_EXIT_MS : -1);
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) return fail(e, errno, "poll", "exec io");
      if (ready == 0) {
        // Silence after the exit: what still holds the output is a background process. Output
        // the reader has not taken yet is its to take, however slowly.
        if (out_.wants_write() || err_.wants_write()) continue;
        break;
      }
      if (fired(pfds, at_pidfd_)) reap();
      if (fired(pfds, at_control_)) take_control_lines();
      if (fired(pfds, at_in_r_)) read_some(&in_);
      if (fired(pfds, at_out_r_)) read_some(&out_);
      if (fired(pfds, at_err_r_)) read_some(&err_);
      // Written right after the read, not only on POLLOUT: the destination usually has room.
      for (Pump* p : {&in_, &out_, &err_}) {
        if (p->len > 0 && !write_some(p)) lost_destination(p);
      }
    }
    if (!exited_) reap_blocking();
    close_all();
    *wait_status = status_;
    return 0;
  }

 private:
  std::array<unique_fd*, 8> all_fds() {
    return {&io_->agent_in, &io_->agent_out, &io_->agent_err, &io_->master,
            &io_->child_in, &io_->child_out, &io_->child_err, &io_->control};
  }

  static void add(std::vector<struct pollfd>* pfds, int fd, short events, int* at) {
    *at = -1;
    if (fd < 0) return;
    *at = static_cast<int>(pfds->size());
    pfds->push_back({fd, events, 0});
  }

  static bool fired(const std::vector<struct pollfd>& pfds, int at) {
    return at >= 0 && pfds[static_cast<size_t>(at)].revents != 0;
  }

  // settle applies what EOFs mean once a pump's buffer is empty.
  void settle() {
    if (!in_.done && in_.eof && in_.len == 0) {
      if (tty_ && !veof_queued_ && io_->master.valid()) {
        // A terminal has no half-close: stdin ending is the user typing the EOF character.
        struct termios t {};
        cc_t veof = ::tcgetattr(io_->master.get(), &t) == 0 ? t.c_cc[VEOF] : 4;
        in_.buf.assign(1, static_cast<char>(veof));
        in_.off = 0;
        in_.len = 1;
        veof_queued_ = true;
        io_->agent_in.reset();
      } else {
        finish_in();
      }
    }
    for (Pump* p : {&out_, &err_}) {
      if (!p->done && p->eof && p->len == 0) {
        p->done = true;
        p->dst->reset();
        if (!tty_) p->src->reset();
      }
    }
  }

  void finish_in() {
    in_.done = true;
    in_.len = 0;
    io_->agent_in.reset();
    io_->child_in.reset();
  }

  // lost_destination handles a reader that went away: stdin the command closed is dropped; output
  // nobody reads ends the source too (SIGPIPE for a pipe, a hang-up for a terminal).
  void lost_destination(Pump* p) {
    if (p == &in_) {
      finish_in();
      return;
    }
    p->done = true;
    p->len = 0;
    p->dst->reset();
    if (tty_ && p == &out_) hang_up();
    else p->src->reset();
  }

  void take_control_lines() {
    char buf[512];
    for (;;) {
      ssize_t n = ::read(io_->control.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break;
      if (n <= 0) {
        io_->control.reset();
        hang_up();
        break;
      }
      io_->control_pending.append(buf, static_cast<size_t>(n));
      // Lines are short; a peer that never ends one is cut off rather than buffered.
      if (io_->control_pending.size() > sizeof buf * 8) io_->control_pending.clear();
    }
    size_t nl;
    while ((nl = io_->control_pending.find('\n')) != std::string::npos) {
      std::string line = io_->control_pending.substr(0, nl);
      io_->control_pending.erase(0, nl + 1);
      ExecControl c;
      if (line.empty() || parse_exec_control(line, &c, nullptr) < 0) continue;
      if (c.kind == ExecControl::Kind::Resize) {
        if (io_->master.valid()) set_window_size(io_->master.get(), c.rows, c.cols, nullptr);
      } else {
        deliver(c.signo);
      }
    }
  }

  // deliver sends signo where a terminal would: its foreground process group, else the
  // command's own group (it is a session leader), else the command alone.
  void deliver(int signo) {
    if (exited_) return;  // reaped: its pid and group may name someone else now
    if (io_->master.valid() && ::ioctl(io_->master.get(), TIOCSIG, signo) == 0) return;
    if (::kill(-io_->child_pid, signo) == 0) return;
    ::syscall(SYS_pidfd_send_signal, io_->child_pidfd, signo, nullptr, 0);
  }

  void hang_up() {
    if (hung_up_) return;
    hung_up_ = true;
    if (tty_) {
      // Closing the last master fd is the hang-up: the kernel sends SIGHUP to the session.
      in_.done = out_.done = true;
      in_.len = out_.len = 0;
      io_->master.reset();
      io_->agent_in.reset();
      io_->agent_out.reset();
    } else {
      deliver(SIGHUP);
    }
  }

  void reap() {
    int st = 0;
    pid_t p;
    do {
      p = ::waitpid(io_->child_pid, &st, WNOHANG);
    } while (p < 0 && errno == EINTR);
    if (p != io_->child_pid) return;
    status_ = st;
    exited_ = true;
    // Nobody reads stdin any more.
    if (!in_.done) finish_in();
  }

  void reap_blocking() {
    int st = 0;
    while (::waitpid(io_->child_pid, &st, 0) < 0 && errno == EINTR) {
    }
    status_ = st;
    exited_ = true;
  }

  void close_all() {
    for (unique_fd* fd : all_fds()) fd->reset();
  }

  ExecIo* io_;
  bool tty_;
  Pump in_, out_, err_;
  bool exited_ = false;
  bool hung_up_ = false;
  bool veof_queued_ = false;
  int status_ = 0;
  int at_in_r_ = -1, at_in_w_ = -1, at_out_r_ = -1, at_out_w_ = -1, at_err_r_ = -1,
      at_err_w_ = -1, at_control_ = -1, at_pidfd_ = -1;
};

}  // namespace

int parse_exec_control(const std::string& line, ExecControl* out, Error* e) {
  std::vector<WireField> fields;
  if (int rc = split_wire(line, "parse exec control", &fields, e); rc < 0) return rc;
  if (fields.size() != 1) return fail(e, EINVAL, "parse exec control", line);
  const std::string& key = fields[0].key;
  const std::string& value = fields[0].value;
  unsigned long a = 0, b = 0;
  if (key == "resize") {
    size_t sp = value.find(' ');
    if (sp == std::string::npos || !parse_uint(value.substr(0, sp), UINT16_MAX, &a) ||
        !parse_uint(value.substr(sp + 1), UINT16_MAX, &b))
      return fail(e, EINVAL, "parse exec control", key);
    out->kind = ExecControl::Kind::Resize;
    out->rows = static_cast<uint16_t>(a);
    out->cols = static_cast<uint16_t>(b);
    return 0;
  }
  if (key == "signal") {
    if (!parse_uint(value, 64, &a) || a == 0) return fail(e, EINVAL, "parse exec control", key);
    out->kind = ExecControl::Kind::Signal;
    out->signo = static_cast<int>(a);
    return 0;
  }
  return fail(e, EINVAL, "parse exec control", key);
}

int open_pty(Pty* out, Error* e) {
  unique_fd master(::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master.valid()) return fail(e, errno, "open", "/dev/ptmx");
  if (::unlockpt(master.get()) < 0) return fail(e, errno, "unlockpt", "/dev/ptmx");
  unique_fd slave(::ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave.valid()) return fail(e, errno, "open pty slave", "/dev/ptmx");
  out->master = std::move(master);
  out->slave = std::move(slave);
  return 0;
}

int set_window_size(int master, uint16_t rows, uint16_t cols, Error* e) {
  struct winsize ws {};
  ws.ws_row = rows;
  ws.ws_col = cols;
  if (::ioctl(master, TIOCSWINSZ, &ws) < 0) return fail(e, errno, "set window size", "pty");
  return 0;
}

int run_exec_io(ExecIo* io, int* wait_status, Error* e) {
  Loop loop(io);
  return loop.run(wait_status, e);
}

}  // namespace berth

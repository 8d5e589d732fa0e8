// berth_native: the thin Node binding of the native core. It never forks the Node process
// (posix_spawn only) and never blocks the event loop (all work in AsyncWorkers).
//
//   spawnShim(shimPath, containerDir, specText) -> Promise<{ pid, shimPid }>
//     rejects with an Error carrying .code ('EINVAL'), .errno, .step and .path.
//   execInContainer(shimPath, containerDir, pid, requestText, deadlineMs)
//     -> Promise<{ exitCode, signal, timedOut, stdout, stderr, stdoutTruncated, stderrTruncated }>
//     runs `berth-shim --exec`; stdout/stderr are Buffers of at most 4 MiB each. deadlineMs > 0
//     is a backstop: the helper is killed and the promise rejects with ETIMEDOUT.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <napi.h>

#include <string>
#include <vector>

#include "../lib/error.h"
#include "../lib/fsutil.h"
#include "../lib/unique_fd.h"

extern char** environ;

namespace {

using berth::Error;
using berth::unique_fd;

constexpr size_t MAX_REPLY_BYTES = 64 * 1024;

// describe renders an Error the way every berth layer shows it: `mount overlay on /x: EINVAL`.
std::string describe(const Error& e) {
  std::string msg = e.step;
  if (!e.path.empty()) msg += (e.step.compare(0, 6, "mount ") == 0 ? " on " : " ") + e.path;
  return msg + ": " + berth::errno_name(e.err);
}

// to_js is the one place native errors become JS errors.
Napi::Error to_js(Napi::Env env, const Error& e) {
  Napi::Error err = Napi::Error::New(env, describe(e));
  err.Set("code", Napi::String::New(env, berth::errno_name(e.err)));
  err.Set("errno", Napi::Number::New(env, e.err));
  err.Set("step", Napi::String::New(env, e.step));
  err.Set("path", Napi::String::New(env, e.path));
  return err;
}

int write_all(int fd, const std::string& data, Error* e) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return berth::fail(e, errno, "write spec", "shim");
    off += static_cast<size_t>(n);
  }
  return 0;
}

// parse_reply understands the shim's single reply line.
int parse_reply(const std::string& line, pid_t* pid, pid_t* shim_pid, Error* e) {
  if (line.compare(0, 3, "ok ") == 0) {
    char* end = nullptr;
    *pid = static_cast<pid_t>(std::strtol(line.c_str() + 3, &end, 10));
    *shim_pid = static_cast<pid_t>(std::strtol(end, nullptr, 10));
    if (*pid <= 0 || *shim_pid <= 0) return berth::fail(e, EPROTO, "read shim reply", line);
    return 0;
  }
  if (line.compare(0, 4, "err\t") == 0) {
    size_t t1 = line.find('\t', 4);
    size_t t2 = t1 == std::string::npos ? t1 : line.find('\t', t1 + 1);
    if (t2 != std::string::npos) {
      int err = std::atoi(line.substr(4, t1 - 4).c_str());
      return berth::fail(e, err > 0 ? err : EPROTO, line.substr(t1 + 1, t2 - t1 - 1).c_str(),
                         line.substr(t2 + 1));
    }
  }
  return berth::fail(e, EPROTO, "read shim reply", line);
}

class SpawnShimWorker : public Napi::AsyncWorker {
 public:
  SpawnShimWorker(Napi::Env env, std::string shim, std::string dir, std::string spec)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        shim_(std::move(shim)),
        dir_(std::move(dir)),
        spec_(std::move(spec)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override { rc_ = spawn(); }

  void OnOK() override {
    Napi::Env env = Env();
    if (rc_ < 0) {
      deferred_.Reject(to_js(env, err_).Value());
      return;
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("pid", Napi::Number::New(env, pid_));
    out.Set("shimPid", Napi::Number::New(env, shim_pid_));
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  int spawn() {
    int spec_pipe[2];
    int reply_pipe[2];
    if (::pipe2(spec_pipe, O_CLOEXEC) < 0) return berth::fail(&err_, errno, "pipe", "shim");
    unique_fd spec_r(spec_pipe[0]), spec_w(spec_pipe[1]);
    if (::pipe2(reply_pipe, O_CLOEXEC) < 0) return berth::fail(&err_, errno, "pipe", "shim");
    unique_fd reply_r(reply_pipe[0]), reply_w(reply_pipe[1]);

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_adddup2(&fa, spec_r.get(), 0);
    posix_spawn_file_actions_adddup2(&fa, reply_w.get(), 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    // Node ignores SIGPIPE and may block signals in this thread; the shim starts clean.
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF |
                                        POSIX_SPAWN_SETSIGMASK);
    char* argv[] = {const_cast<char*>(shim_.c_str()), const_cast<char*>(dir_.c_str()), nullptr};
    pid_t child = -1;
    int sp = ::posix_spawn(&child, shim_.c_str(), &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (sp != 0) return berth::fail(&err_, sp, "spawn shim", shim_);
    spec_r.reset();
    reply_w.reset();

    Error werr;
    int wrc = write_all(spec_w.get(), spec_, &werr);
    spec_w.reset();

    std::string line;
    char buf[512];
    while (line.find('\n') == std::string::npos && line.size() < MAX_REPLY_BYTES) {
      ssize_t n = ::read(reply_r.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    // The spawned process exits right after forking the long-lived shim; reap it here.
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    size_t nl = line.find('\n');
    if (nl == std::string::npos) {
      if (wrc < 0) {
        err_ = werr;
        return wrc;
      }
      return berth::fail(&err_, EPROTO, "shim exited without reply",
                         "status " + std::to_string(status));
    }
    return parse_reply(line.substr(0, nl), &pid_, &shim_pid_, &err_);
  }

  Napi::Promise::Deferred deferred_;
  std::string shim_;
  std::string dir_;
  std::string spec_;
  int rc_ = 0;
  Error err_;
  pid_t pid_ = -1;
  pid_t shim_pid_ = -1;
};

Napi::Value SpawnShim(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[0].IsString() || !info[1].IsString() || !info[2].IsString()) {
    Napi::TypeError::New(env, "spawnShim(shimPath, containerDir, specText): strings expected")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* worker = new SpawnShimWorker(env, info[0].As<Napi::String>(), info[1].As<Napi::String>(),
                                     info[2].As<Napi::String>());
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// ExecWorker runs `berth-shim --exec DIR PID` and collects the command's output, each stream
// capped at MAX_EXEC_OUTPUT_BYTES (the rest is read and dropped, and flagged as truncated).
class ExecWorker : public Napi::AsyncWorker {
 public:
  ExecWorker(Napi::Env env, std::string shim, std::string dir, pid_t pid, std::string request,
             int64_t deadline_ms)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        shim_(std::move(shim)),
        dir_(std::move(dir)),
        pid_(std::to_string(pid)),
        request_(std::move(request)),
        deadline_ms_(deadline_ms) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override { rc_ = run(); }

  void OnOK() override {
    Napi::Env env = Env();
    if (rc_ < 0) {
      deferred_.Reject(to_js(env, err_).Value());
      return;
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("exitCode", Napi::Number::New(env, exit_code_));
    out.Set("signal", Napi::Number::New(env, signal_));
    out.Set("timedOut", Napi::Boolean::New(env, timed_out_));
    out.Set("stdout", Napi::Buffer<char>::Copy(env, out_[0].data(), out_[0].size()));
    out.Set("stderr", Napi::Buffer<char>::Copy(env, out_[1].data(), out_[1].size()));
    out.Set("stdoutTruncated", Napi::Boolean::New(env, truncated_[0]));
    out.Set("stderrTruncated", Napi::Boolean::New(env, truncated_[1]));
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  static constexpr size_t MAX_EXEC_OUTPUT_BYTES = 4 * 1024 * 1024;
  // Once the status line is in, the command has exited; what still holds its pipes is a
  // background process it left behind, so the drain is short and bounded.
  static constexpr int DRAIN_AFTER_STATUS_MS = 200;

  int spawn(pid_t* child, unique_fd* req_w, unique_fd fds_r[3]) {
    int p[4][2];
    for (auto& pp : p) {
      if (::pipe2(pp, O_CLOEXEC) < 0) return berth::fail(&err_, errno, "pipe", "exec");
    }
    unique_fd req_r(p[0][0]);
    req_w->reset(p[0][1]);
    unique_fd w[3];
    for (int i = 0; i < 3; i++) {
      fds_r[i].reset(p[i + 1][0]);
      w[i].reset(p[i + 1][1]);
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_adddup2(&fa, req_r.get(), 0);
    for (int i = 0; i < 3; i++) posix_spawn_file_actions_adddup2(&fa, w[i].get(), i + 1);
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF |
                                        POSIX_SPAWN_SETSIGMASK);
    const char* flag = "--exec";
    char* argv[] = {const_cast<char*>(shim_.c_str()), const_cast<char*>(flag),
                    const_cast<char*>(dir_.c_str()), const_cast<char*>(pid_.c_str()), nullptr};
    int sp = ::posix_spawn(child, shim_.c_str(), &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (sp != 0) return berth::fail(&err_, sp, "spawn shim", shim_);
    return 0;
  }

  int run() {
    pid_t child = -1;
    unique_fd req_w;
    unique_fd fds[3];  // stdout, stderr, status
    if (int rc = spawn(&child, &req_w, fds); rc < 0) return rc;
    Error werr;
    int wrc = write_all(req_w.get(), request_, &werr);
    req_w.reset();
    std::string status;
    int64_t start = now_ms();
    int64_t drain_until = -1;
    bool killed = false;
    std::vector<char> buf(64 * 1024);
    while (fds[0].valid() || fds[1].valid() || fds[2].valid()) {
      int64_t now = now_ms();
      int timeout = -1;
      if (drain_until >= 0) {
        if (now >= drain_until) break;
        timeout = static_cast<int>(drain_until - now);
      } else if (deadline_ms_ > 0) {
        if (now - start >= deadline_ms_) {
          ::kill(child, SIGKILL);
          killed = true;
          break;
        }
        timeout = static_cast<int>(deadline_ms_ - (now - start));
      }
      struct pollfd pfds[3];
      int idx[3];
      int n = 0;
      for (int i = 0; i < 3; i++) {
        idx[i] = -1;
        if (!fds[i].valid()) continue;
        idx[i] = n;
        pfds[n++] = {fds[i].get(), POLLIN, 0};
      }
      int ready = ::poll(pfds, n, timeout);
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) return berth::fail(&err_, errno, "poll", "exec");
      for (int i = 0; i < 3; i++) {
        if (idx[i] < 0 || pfds[idx[i]].revents == 0) continue;
        ssize_t got = ::read(fds[i].get(), buf.data(), buf.size());
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
          fds[i].reset();
          if (i == 2 && drain_until < 0) drain_until = now_ms() + DRAIN_AFTER_STATUS_MS;
          continue;
        }
        if (i == 2) {
          if (status.size() < MAX_REPLY_BYTES) status.append(buf.data(), static_cast<size_t>(got));
          continue;
        }
        size_t room = MAX_EXEC_OUTPUT_BYTES - out_[i].size();
        size_t take = static_cast<size_t>(got) < room ? static_cast<size_t>(got) : room;
        out_[i].append(buf.data(), take);
        if (take < static_cast<size_t>(got)) truncated_[i] = true;
      }
    }
    int wstatus = 0;
    while (::waitpid(child, &wstatus, 0) < 0 && errno == EINTR) {
    }
    if (killed) {
      return berth::fail(&err_, ETIMEDOUT, "exec deadline", std::to_string(deadline_ms_) + " ms");
    }
    return parse_status(status, wrc, werr);
  }

  int parse_status(const std::string& status, int wrc, const Error& werr) {
    size_t nl = status.find('\n');
    if (nl == std::string::npos) {
      if (wrc < 0) {
        err_ = werr;
        return wrc;
      }
      return berth::fail(&err_, EPROTO, "exec helper exited without status", dir_);
    }
    std::string line = status.substr(0, nl);
    bool timeout = line.compare(0, 8, "timeout ") == 0;
    if (timeout || line.compare(0, 5, "exit ") == 0) {
      char* end = nullptr;
      exit_code_ = static_cast<int>(std::strtol(line.c_str() + (timeout ? 8 : 5), &end, 10));
      signal_ = static_cast<int>(std::strtol(end, nullptr, 10));
      timed_out_ = timeout;
      return 0;
    }
    pid_t ignored_pid, ignored_shim;
    return parse_reply(line, &ignored_pid, &ignored_shim, &err_);
  }

  static int64_t now_ms() {
    struct timespec ts {};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
  }

  Napi::Promise::Deferred deferred_;
  std::string shim_;
  std::string dir_;
  std::string pid_;
  std::string request_;
  int64_t deadline_ms_;
  int rc_ = 0;
  Error err_;
  std::string out_[2];
  bool truncated_[2] = {false, false};
  int exit_code_ = 0;
  int signal_ = 0;
  bool timed_out_ = false;
};

Napi::Value ExecInContainer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 5 || !info[0].IsString() || !info[1].IsString() || !info[2].IsNumber() ||
      !info[3].IsString() || !info[4].IsNumber()) {
    Napi::TypeError::New(env,
                         "execInContainer(shimPath, containerDir, pid, requestText, deadlineMs): "
                         "strings and numbers expected")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* worker = new ExecWorker(env, info[0].As<Napi::String>(), info[1].As<Napi::String>(),
                                info[2].As<Napi::Number>().Int32Value(),
                                info[3].As<Napi::String>(), info[4].As<Napi::Number>().Int64Value());
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("spawnShim", Napi::Function::New(env, SpawnShim, "spawnShim"));
  exports.Set("execInContainer", Napi::Function::New(env, ExecInContainer, "execInContainer"));
  return exports;
}

}  // namespace

NODE_API_MODULE(berth_native, Init)

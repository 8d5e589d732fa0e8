// berth_native: the thin Node binding of the native core. It never forks the Node process
// (posix_spawn only) and never blocks the event loop (all work in AsyncWorkers).
//
//   spawnShim(shimPath, containerDir, specText) -> Promise<{ pid, shimPid }>
//     rejects with an Error carrying .code ('EINVAL'), .errno, .step and .path.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <napi.h>

#include <string>

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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("spawnShim", Napi::Function::New(env, SpawnShim, "spawnShim"));
  return exports;
}

}  // namespace

NODE_API_MODULE(berth_native, Init)

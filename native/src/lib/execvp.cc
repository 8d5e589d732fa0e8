// execvp.cc: PATH search with the container's environment (see execvp.h).
#include "execvp.h"

#include <errno.h>
#include <unistd.h>

namespace berth {

namespace {
constexpr const char* DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}  // namespace

int execvp_env(const std::vector<std::string>& args, const std::vector<std::string>& env,
               Error* e) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const std::string& kv : env) envp.push_back(const_cast<char*>(kv.c_str()));
  envp.push_back(nullptr);
  const std::string& file = args[0];
  if (file.find('/') != std::string::npos) {
    ::execve(file.c_str(), argv.data(), envp.data());
    return fail(e, errno, "exec", file);
  }
  std::string path = DEFAULT_PATH;
  for (const std::string& kv : env) {
    if (kv.compare(0, 5, "PATH=") == 0) path = kv.substr(5);
  }
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

}  // namespace berth

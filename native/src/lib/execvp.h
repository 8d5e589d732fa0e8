// execvp.h: exec with the PATH of a given environment, shared by the container init, exec and
// berth-init (kept apart so berth-init links this and nothing else of the library).
#pragma once

#include <string>
#include <vector>

#include "error.h"

namespace berth {

// execvp_env execs args with env, searching the PATH from env (not the caller's) when args[0]
// has no '/'. It only returns on failure, with the most telling errno (EACCES over ENOENT).
int execvp_env(const std::vector<std::string>& args, const std::vector<std::string>& env, Error* e);

}  // namespace berth

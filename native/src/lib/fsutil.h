// fsutil.h: small file helpers shared by the cgroup backends, the shim and the log pump.
#pragma once

#include <string>

#include "error.h"

namespace berth {

// write_file writes data to an existing (or new, mode 0644) file, truncating it.
int write_file(const std::string& path, const std::string& data, Error* e);

// write_file_atomic writes data to path.tmp, then renames it over path, so readers see all or nothing.
int write_file_atomic(const std::string& path, const std::string& data, Error* e);

// read_file reads a whole small file (up to 64 KiB) into out.
int read_file(const std::string& path, std::string* out, Error* e);

// mkdir_p creates path and its missing parents with mode; an existing directory is fine.
int mkdir_p(const std::string& path, unsigned mode, Error* e);

// errno_name returns the symbolic name of err ("ENOENT"), or "E<number>" when unknown.
std::string errno_name(int err);

}  // namespace berth

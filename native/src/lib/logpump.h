// logpump.h: writes a container's stdout/stderr to its log file in the CRI log format
// (`<RFC3339Nano> <stream> <F|P> <text>`), rotating to `<path>.1` at a size cap.
#pragma once

#include <cstdint>
#include <string>

#include "error.h"
#include "unique_fd.h"

namespace berth {

// rfc3339_nano formats the current UTC time as 2006-01-02T15:04:05.999999999Z.
std::string rfc3339_nano();

// LogPump turns raw chunks from the two streams into CRI log lines.
class LogPump {
 public:
  // LINE_MAX_BYTES: longer lines are split into partial (P) records, as the CRI format allows.
  static constexpr size_t LINE_MAX_BYTES = 16 * 1024;

  LogPump(std::string path, uint64_t max_bytes) : path_(std::move(path)), max_bytes_(max_bytes) {}

  // open creates (or appends to) the log file.
  int open(Error* e);
  // feed appends a chunk read from stream 0 (stdout) or 1 (stderr).
  int feed(int stream, const char* data, size_t len, Error* e);
  // finish flushes a stream's unterminated last line at EOF.
  int finish(int stream, Error* e);

 private:
  void emit(int stream, const char* text, size_t len, bool full, std::string* batch);
  int write_batch(const std::string& batch, Error* e);

  std::string path_;
  uint64_t max_bytes_;
  uint64_t size_ = 0;
  unique_fd fd_;
  std::string pending_[2];
};

}  // namespace berth

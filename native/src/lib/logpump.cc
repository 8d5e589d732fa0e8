#include "logpump.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

namespace berth {

namespace {
constexpr const char* STREAM_NAMES[] = {"stdout", "stderr"};
}

std::string rfc3339_nano() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm {};
  ::gmtime_r(&ts.tv_sec, &tm);
  char buf[64];
  int n = ::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
  return std::string(buf, static_cast<size_t>(n));
}

int LogPump::open(Error* e) {
  fd_.reset(::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
  if (!fd_.valid()) return fail(e, errno, "open log", path_);
  struct stat st {};
  size_ = ::fstat(fd_.get(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  return 0;
}

void LogPump::emit(int stream, const char* text, size_t len, bool full, std::string* batch) {
  batch->append(rfc3339_nano());
  batch->push_back(' ');
  batch->append(STREAM_NAMES[stream]);
  batch->append(full ? " F " : " P ");
  batch->append(text, len);
  batch->push_back('\n');
}

int LogPump::feed(int stream, const char* data, size_t len, Error* e) {
  std::string batch;
  std::string& pend = pending_[stream];
  size_t start = 0;
  for (size_t i = 0; i < len; i++) {
    if (data[i] != '\n') continue;
    if (pend.empty()) {
      emit(stream, data + start, i - start, true, &batch);
    } else {
      pend.append(data + start, i - start);
      emit(stream, pend.data(), pend.size(), true, &batch);
      pend.clear();
    }
    start = i + 1;
  }
  pend.append(data + start, len - start);
  while (pend.size() >= LINE_MAX_BYTES) {
    emit(stream, pend.data(), LINE_MAX_BYTES, false, &batch);
    pend.erase(0, LINE_MAX_BYTES);
  }
  return write_batch(batch, e);
}

int LogPump::finish(int stream, Error* e) {
  std::string& pend = pending_[stream];
  if (pend.empty()) return 0;
  std::string batch;
  emit(stream, pend.data(), pend.size(), true, &batch);
  pend.clear();
  return write_batch(batch, e);
}

int LogPump::write_batch(const std::string& batch, Error* e) {
  if (batch.empty()) return 0;
  if (max_bytes_ > 0 && size_ > 0 && size_ + batch.size() > max_bytes_) {
    // Keep one previous generation, like the kubelet's default of rotating to a numbered file.
    std::string old = path_ + ".1";
    if (::rename(path_.c_str(), old.c_str()) < 0) return fail(e, errno, "rotate log", path_);
    if (int rc = open(e); rc < 0) return rc;
  }
  size_t off = 0;
  while (off < batch.size()) {
    ssize_t n = ::write(fd_.get(), batch.data() + off, batch.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(e, errno, "write log", path_);
    }
    off += static_cast<size_t>(n);
  }
  size_ += batch.size();
  return 0;
}

}  // namespace berth

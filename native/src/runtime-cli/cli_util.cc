#include "cli_util.h"

#include <signal.h>
#include <string.h>

#include <cstdlib>

#include "../lib/fsutil.h"
#include "../lib/oci_config.h"

namespace berth {

std::string describe_error(const Error& e) {
  if (e.step == OCI_CONFIG_STEP) return e.step + ": " + e.path;
  std::string out = e.step;
  if (!e.path.empty()) out += " " + e.path;
  return out + ": " + errno_name(e.err);
}

int parse_signal(const std::string& text) {
  if (text.empty()) return -1;
  if (text.find_first_not_of("0123456789") == std::string::npos) {
    if (text.size() > 3) return -1;
    int n = std::atoi(text.c_str());
    return n >= 1 && n < NSIG ? n : -1;
  }
  std::string name = text;
  for (char& c : name) c = static_cast<char>(::toupper(static_cast<unsigned char>(c)));
  if (name.compare(0, 3, "SIG") == 0) name.erase(0, 3);
  for (int n = 1; n < NSIG; n++) {
    const char* abbrev = ::sigabbrev_np(n);
    if (abbrev != nullptr && name == abbrev) return n;
  }
  return -1;
}

bool parse_proc_stat(const std::string& text, ProcStat* out) {
  size_t close = text.rfind(')');
  if (close == std::string::npos || close + 2 >= text.size()) return false;
  // After ") " come field 3 (state) onwards; start time is field 22.
  const char* p = text.c_str() + close + 2;
  out->state = *p;
  for (int field = 3; field < 22; field++) {
    p = ::strchr(p, ' ');
    if (p == nullptr) return false;
    p++;
  }
  char* end = nullptr;
  out->start_ticks = std::strtoull(p, &end, 10);
  return end != p;
}

const char* oci_status(bool proc_found, const ProcStat& st, uint64_t recorded_start_ticks,
                       bool exec_fifo_exists) {
  if (!proc_found || st.state == 'Z' || st.state == 'X' || st.start_ticks != recorded_start_ticks)
    return OCI_STATUS_STOPPED;
  return exec_fifo_exists ? OCI_STATUS_CREATED : OCI_STATUS_RUNNING;
}

}  // namespace berth

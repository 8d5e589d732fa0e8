// main.cc: runs every registered test, prints `ok`/`FAIL` per test, exits 1 if any failed.
// `berth-core-tests FILTER` runs only the tests whose name contains FILTER.
#include <cstdio>
#include <cstring>

#include "harness.h"

namespace berth_test {
std::vector<TestCase>& registry() {
  static std::vector<TestCase> tests;
  return tests;
}
}  // namespace berth_test

int main(int argc, char** argv) {
  int failed = 0;
  int ran = 0;
  for (const auto& t : berth_test::registry()) {
    if (argc > 1 && std::strstr(t.name, argv[1]) == nullptr) continue;
    ran++;
    try {
      t.body();
      std::printf("ok   %s\n", t.name);
    } catch (const berth_test::Failure& f) {
      failed++;
      std::printf("FAIL %s\n  %s\n", t.name, f.msg.c_str());
    } catch (const std::exception& ex) {
      failed++;
      std::printf("FAIL %s\n  unexpected exception: %s\n", t.name, ex.what());
    }
  }
  std::printf("%d tests, %d failed\n", ran, failed);
  return failed == 0 && ran > 0 ? 0 : 1;
}

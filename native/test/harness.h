// harness.h: a tiny self-made test harness for the native core (no gtest: one header, no
// dependency, and a failure prints the expression, the values and the line).
#pragma once

#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace berth_test {

// TestCase is one registered test.
struct TestCase {
  const char* name;
  std::function<void()> body;
};

// registry holds every TEST in link order.
std::vector<TestCase>& registry();

// Failure aborts the current test with a message.
struct Failure {
  std::string msg;
};

// Register adds a test at static-initialisation time (the TEST macro makes one per test).
struct Register {
  Register(const char* name, std::function<void()> body) { registry().push_back({name, std::move(body)}); }
};

template <typename A, typename B>
void expect_eq(const A& a, const B& b, const char* ea, const char* eb, const char* file, int line) {
  if (a == b) return;
  std::ostringstream os;
  os << file << ":" << line << ": expected " << ea << " == " << eb << "\n    left:  " << a
     << "\n    right: " << b;
  throw Failure{os.str()};
}

inline void expect_true(bool v, const char* expr, const char* file, int line) {
  if (v) return;
  std::ostringstream os;
  os << file << ":" << line << ": expected " << expr;
  throw Failure{os.str()};
}

}  // namespace berth_test

#define BT_CAT2(a, b) a##b
#define BT_CAT(a, b) BT_CAT2(a, b)
#define TEST(name)                                                                  \
  static void name();                                                               \
  static berth_test::Register BT_CAT(reg_, name)(#name, name);                      \
  static void name()
#define EXPECT_EQ(a, b) berth_test::expect_eq((a), (b), #a, #b, __FILE__, __LINE__)
#define EXPECT_TRUE(v) berth_test::expect_true((v), #v, __FILE__, __LINE__)

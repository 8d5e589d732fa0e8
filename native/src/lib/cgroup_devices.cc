// cgroup_devices.cc: the default device rules and the hand-assembled v2 device program.
//
// The program sees struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; } where
// access_type = (access << 16) | type. It is a flat list of rule blocks; each block falls through
// to "allow" only if every field matches, and any mismatch jumps to the next block:
//
//   r2 = type, r3 = access, r4 = major, r5 = minor
//   per rule: if r2 != T goto next; [r1 = r3 & A; if r1 != r3 goto next;]
//             [if r4 != MAJ goto next;] [if r5 != MIN goto next;] r0 = 1; exit
//   r0 = 0; exit
#include "cgroup_devices.h"

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>

#include "unique_fd.h"

namespace berth {

namespace {

constexpr int R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R5 = 5;
constexpr int ACCESS_ALL = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;
constexpr const char* PROGRAM_LICENSE = "Apache-2.0";

bpf_insn insn(uint8_t code, int dst, int src, int16_t off, int32_t imm) {
  bpf_insn i;
  std::memset(&i, 0, sizeof i);
  i.code = code;
  i.dst_reg = static_cast<uint8_t>(dst);
  i.src_reg = static_cast<uint8_t>(src);
  i.off = off;
  i.imm = imm;
  return i;
}

bpf_insn load_u32(int dst, int src, int16_t off) { return insn(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0); }
bpf_insn mov_reg(int dst, int src) { return insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0); }
bpf_insn mov_imm(int dst, int32_t imm) { return insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm); }
bpf_insn and_imm(int dst, int32_t imm) { return insn(BPF_ALU64 | BPF_AND | BPF_K, dst, 0, 0, imm); }
bpf_insn rsh_imm(int dst, int32_t imm) { return insn(BPF_ALU64 | BPF_RSH | BPF_K, dst, 0, 0, imm); }
// The jump offsets of a block are patched once its length is known.
bpf_insn jne_imm(int dst, int32_t imm) { return insn(BPF_JMP | BPF_JNE | BPF_K, dst, 0, 0, imm); }
bpf_insn jne_reg(int dst, int src) { return insn(BPF_JMP | BPF_JNE | BPF_X, dst, src, 0, 0); }
bpf_insn exit_insn() { return insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

int access_mask(const char* access) {
  int mask = 0;
  for (const char* c = access; *c != '\0'; c++) {
    if (*c == 'r') mask |= BPF_DEVCG_ACC_READ;
    if (*c == 'w') mask |= BPF_DEVCG_ACC_WRITE;
    if (*c == 'm') mask |= BPF_DEVCG_ACC_MKNOD;
  }
  return mask;
}

long bpf(int cmd, union bpf_attr* attr) { return ::syscall(SYS_bpf, cmd, attr, sizeof *attr); }

}  // namespace

const std::vector<DeviceRule>& default_device_rules() {
  static const std::vector<DeviceRule> rules = {
      {'c', DEVICE_WILDCARD, DEVICE_WILDCARD, "m"},  // mknod anything; using it is decided below
      {'b', DEVICE_WILDCARD, DEVICE_WILDCARD, "m"},
      {'c', 1, 3, "rwm"},    // /dev/null
      {'c', 1, 5, "rwm"},    // /dev/zero
      {'c', 1, 7, "rwm"},    // /dev/full
      {'c', 1, 8, "rwm"},    // /dev/random
      {'c', 1, 9, "rwm"},    // /dev/urandom
      {'c', 5, 0, "rwm"},    // /dev/tty
      {'c', 5, 1, "rwm"},    // /dev/console
      {'c', 5, 2, "rwm"},    // /dev/ptmx
      {'c', 136, DEVICE_WILDCARD, "rwm"},  // /dev/pts/*
  };
  return rules;
}

std::string device_rule_v1(const DeviceRule& rule) {
  auto num = [](long n) { return n == DEVICE_WILDCARD ? std::string("*") : std::to_string(n); };
  return std::string(1, rule.type) + " " + num(rule.major) + ":" + num(rule.minor) + " " +
         rule.access;
}

std::vector<bpf_insn> build_device_program(const std::vector<DeviceRule>& rules) {
  std::vector<bpf_insn> prog = {
      load_u32(R2, R1, offsetof(bpf_cgroup_dev_ctx, access_type)),
      mov_reg(R3, R2),
      and_imm(R2, 0xffff),
      rsh_imm(R3, 16),
      load_u32(R4, R1, offsetof(bpf_cgroup_dev_ctx, major)),
      load_u32(R5, R1, offsetof(bpf_cgroup_dev_ctx, minor)),
  };
  for (const DeviceRule& rule : rules) {
    size_t start = prog.size();
    prog.push_back(jne_imm(R2, rule.type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR));
    int mask = access_mask(rule.access);
    if (mask != ACCESS_ALL) {
      // Every requested access bit must be in the rule: (access & mask) == access.
      prog.push_back(mov_reg(R1, R3));
      prog.push_back(and_imm(R1, mask));
      prog.push_back(jne_reg(R1, R3));
    }
    if (rule.major != DEVICE_WILDCARD) prog.push_back(jne_imm(R4, static_cast<int32_t>(rule.major)));
    if (rule.minor != DEVICE_WILDCARD) prog.push_back(jne_imm(R5, static_cast<int32_t>(rule.minor)));
    prog.push_back(mov_imm(R0, 1));
    prog.push_back(exit_insn());
    size_t next = prog.size();
    for (size_t i = start; i < next; i++) {
      if (BPF_CLASS(prog[i].code) == BPF_JMP && BPF_OP(prog[i].code) == BPF_JNE)
        prog[i].off = static_cast<int16_t>(next - i - 1);
    }
  }
  prog.push_back(mov_imm(R0, 0));
  prog.push_back(exit_insn());
  return prog;
}

int attach_device_program(int cgroup_fd, const std::vector<DeviceRule>& rules, Error* e) {
  std::vector<bpf_insn> prog = build_device_program(rules);
  union bpf_attr load;
  std::memset(&load, 0, sizeof load);
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insns = reinterpret_cast<uintptr_t>(prog.data());
  load.insn_cnt = static_cast<uint32_t>(prog.size());
  load.license = reinterpret_cast<uintptr_t>(PROGRAM_LICENSE);
  unique_fd prog_fd(static_cast<int>(bpf(BPF_PROG_LOAD, &load)));
  if (!prog_fd.valid()) return fail(e, errno, "load device program", "bpf");
  union bpf_attr attach;
  std::memset(&attach, 0, sizeof attach);
  attach.target_fd = static_cast<uint32_t>(cgroup_fd);
  attach.attach_bpf_fd = static_cast<uint32_t>(prog_fd.get());
  attach.attach_type = BPF_CGROUP_DEVICE;
  attach.attach_flags = BPF_F_ALLOW_MULTI;
  // The attachment holds its own reference; the program lives as long as the cgroup does.
  if (bpf(BPF_PROG_ATTACH, &attach) < 0) return fail(e, errno, "attach device program", "bpf");
  return 0;
}

}  // namespace berth

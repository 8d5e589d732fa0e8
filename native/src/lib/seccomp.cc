#include "seccomp.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace berth {

namespace {

#if defined(__x86_64__)
constexpr uint32_t NATIVE_ARCH = AUDIT_ARCH_X86_64;
constexpr uint32_t X32_SYSCALL_BIT = 0x40000000;
#elif defined(__aarch64__)
constexpr uint32_t NATIVE_ARCH = AUDIT_ARCH_AARCH64;
constexpr uint32_t X32_SYSCALL_BIT = 0;
#else
#error "berth's seccomp filter knows x86_64 and aarch64 only"
#endif

// NAMESPACE_FLAGS_MASK is every CLONE_NEW* flag: creating any namespace needs CAP_SYS_ADMIN.
constexpr uint32_t NAMESPACE_FLAGS_MASK = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS |
                                          CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
                                          CLONE_NEWNET;
// The personalities Docker lets through: PER_LINUX, UNAME26, PER_LINUX32, UNAME26|PER_LINUX32,
// and 0xffffffff (a query).
constexpr uint32_t ALLOWED_PERSONALITIES[] = {0x0, 0x20000, 0x8, 0x20008, 0xffffffff};
constexpr int NO_CAP = -1;

// Denied is one syscall denied with EPERM unless the container holds cap.
struct Denied {
  long nr;
  int cap;
};

constexpr Denied DENIED[] = {
    {__NR_mount, CAP_SYS_ADMIN},          {__NR_umount2, CAP_SYS_ADMIN},
    {__NR_pivot_root, CAP_SYS_ADMIN},     {__NR_setns, CAP_SYS_ADMIN},
    {__NR_open_tree, CAP_SYS_ADMIN},      {__NR_move_mount, CAP_SYS_ADMIN},
    {__NR_fsopen, CAP_SYS_ADMIN},         {__NR_fsconfig, CAP_SYS_ADMIN},
    {__NR_fsmount, CAP_SYS_ADMIN},        {__NR_fspick, CAP_SYS_ADMIN},
    {__NR_mount_setattr, CAP_SYS_ADMIN},  {__NR_quotactl, CAP_SYS_ADMIN},
    {__NR_lookup_dcookie, CAP_SYS_ADMIN}, {__NR_name_to_handle_at, CAP_SYS_ADMIN},
    {__NR_open_by_handle_at, CAP_DAC_READ_SEARCH},
    {__NR_kexec_load, CAP_SYS_BOOT},      {__NR_kexec_file_load, CAP_SYS_BOOT},
    {__NR_reboot, CAP_SYS_BOOT},          {__NR_init_module, CAP_SYS_MODULE},
    {__NR_finit_module, CAP_SYS_MODULE},  {__NR_delete_module, CAP_SYS_MODULE},
    {__NR_bpf, CAP_SYS_ADMIN},            {__NR_perf_event_open, CAP_SYS_ADMIN},
    {__NR_userfaultfd, NO_CAP},           {__NR_keyctl, NO_CAP},
    {__NR_add_key, NO_CAP},               {__NR_request_key, NO_CAP},
    {__NR_swapon, CAP_SYS_ADMIN},         {__NR_swapoff, CAP_SYS_ADMIN},
    {__NR_acct, CAP_SYS_PACCT},           {__NR_settimeofday, CAP_SYS_TIME},
    {__NR_clock_settime, CAP_SYS_TIME},   {__NR_clock_adjtime, CAP_SYS_TIME},
    {__NR_adjtimex, CAP_SYS_TIME},        {__NR_syslog, CAP_SYSLOG},
    {__NR_fanotify_init, CAP_SYS_ADMIN},  {__NR_vhangup, CAP_SYS_TTY_CONFIG},
#if defined(__x86_64__)
    {__NR_iopl, CAP_SYS_RAWIO},           {__NR_ioperm, CAP_SYS_RAWIO},
    {__NR_create_module, NO_CAP},         {__NR_get_kernel_syms, NO_CAP},
    {__NR_query_module, NO_CAP},          {__NR_uselib, NO_CAP},
    {__NR_nfsservctl, NO_CAP},            {__NR__sysctl, NO_CAP},
#endif
};

constexpr uint32_t RET_ALLOW = SECCOMP_RET_ALLOW;
constexpr uint32_t RET_EPERM = SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA);
constexpr uint32_t RET_ENOSYS = SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA);
constexpr uint32_t RET_KILL = SECCOMP_RET_KILL_PROCESS;
// The low 32 bits of argument 0 (little-endian); the flags the filters look at live there.
constexpr uint32_t ARG0_LOW = offsetof(struct seccomp_data, args[0]);

void stmt(SeccompProgram* p, uint16_t code, uint32_t k) { p->insns.push_back(BPF_STMT(code, k)); }
void jump(SeccompProgram* p, uint16_t code, uint32_t k, uint8_t jt, uint8_t jf) {
  p->insns.push_back(BPF_JUMP(code, k, jt, jf));
}

bool holds(uint64_t caps, int cap) { return cap != NO_CAP && (caps & (uint64_t{1} << cap)) != 0; }

// deny_namespace_flags fails calls of nr whose first argument asks for a new namespace.
void deny_namespace_flags(SeccompProgram* p, long nr) {
  // A holds nr: [jeq nr] [ld arg0] [jset mask] [ret allow] [ret eperm]
  jump(p, BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 4);
  stmt(p, BPF_LD | BPF_W | BPF_ABS, ARG0_LOW);
  jump(p, BPF_JMP | BPF_JSET | BPF_K, NAMESPACE_FLAGS_MASK, 1, 0);
  stmt(p, BPF_RET | BPF_K, RET_ALLOW);
  stmt(p, BPF_RET | BPF_K, RET_EPERM);
}

void allow_personalities(SeccompProgram* p) {
  constexpr uint8_t N = sizeof ALLOWED_PERSONALITIES / sizeof ALLOWED_PERSONALITIES[0];
  jump(p, BPF_JMP | BPF_JEQ | BPF_K, __NR_personality, 0, N + 3);
  stmt(p, BPF_LD | BPF_W | BPF_ABS, ARG0_LOW);
  for (uint8_t i = 0; i < N; i++) {
    // Jump to the allow after the remaining compares and the eperm.
    jump(p, BPF_JMP | BPF_JEQ | BPF_K, ALLOWED_PERSONALITIES[i], static_cast<uint8_t>(N - i), 0);
  }
  stmt(p, BPF_RET | BPF_K, RET_EPERM);
  stmt(p, BPF_RET | BPF_K, RET_ALLOW);
}

}  // namespace

void build_default_seccomp(uint64_t caps, SeccompProgram* out) {
  SeccompProgram& p = *out;
  p.insns.clear();
  stmt(&p, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
  jump(&p, BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 1, 0);
  stmt(&p, BPF_RET | BPF_K, RET_KILL);
  stmt(&p, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
  if (X32_SYSCALL_BIT != 0) {
    jump(&p, BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 1);
    stmt(&p, BPF_RET | BPF_K, RET_KILL);
  }
  for (const Denied& d : DENIED) {
    if (holds(caps, d.cap)) continue;
    jump(&p, BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(d.nr), 0, 1);
    stmt(&p, BPF_RET | BPF_K, RET_EPERM);
  }
  if (!holds(caps, CAP_SYS_ADMIN)) {
    jump(&p, BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1);
    stmt(&p, BPF_RET | BPF_K, RET_ENOSYS);
    deny_namespace_flags(&p, __NR_unshare);
    deny_namespace_flags(&p, __NR_clone);  // x86_64 and aarch64: flags are argument 0
  }
  allow_personalities(&p);  // leaves A clobbered only on its own branch, which returns
  stmt(&p, BPF_RET | BPF_K, RET_ALLOW);
}

int install_seccomp(const SeccompProgram& prog, Error* e) {
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return fail(e, errno, "set no_new_privs", "");
  if (prog.insns.empty()) return 0;
  struct sock_fprog fprog {};
  fprog.len = static_cast<unsigned short>(prog.insns.size());
  fprog.filter = const_cast<struct sock_filter*>(prog.insns.data());
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0)
    return fail(e, errno, "load seccomp filter", "");
  return 0;
}

}  // namespace berth

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { hostname as hostHostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { NativeRuntime } from '../../agent/runtime/native-runtime.js';
import type { ContainerSpec } from '../../agent/runtime/runtime.js';
import { removeCgroupParent } from '../support/cgroups.js';
import { addBusybox, removeContainers, waitExited } from '../support/runtime.js';

const BUSYBOX = '/usr/bin/busybox';
const APPLETS = ['sh', 'sleep', 'hostname', 'cat', 'echo', 'id', 'ps', 'mount', 'unshare', 'readlink', 'touch', 'wc', 'grep', 'ln', 'ls', 'mkdir'];
/** DOCKER_DEFAULT_CAPS is the mask of Docker's 14 default capabilities. */
const DOCKER_DEFAULT_CAPS = 0xa80425fbn;
const CAP_CHOWN = 0n;
const CAP_NET_ADMIN = 12n;
const canRun = process.getuid?.() === 0 && existsSync(BUSYBOX) && existsSync('/usr/bin/g++');

// probe calls each syscall the default seccomp profile denies and prints `name errno`.
const PROBE_SOURCE = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <sched.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
static void probe(const char* name, long rc) { printf("%s %d\n", name, rc < 0 ? errno : 0); }
int main() {
  probe("init_module", syscall(SYS_init_module, 0, 0, ""));
  probe("finit_module", syscall(SYS_finit_module, -1, "", 0));
  probe("delete_module", syscall(SYS_delete_module, "x", 0));
  probe("kexec_load", syscall(SYS_kexec_load, 0, 0, 0, 0));
  probe("bpf", syscall(SYS_bpf, 0, 0, 0));
  probe("perf_event_open", syscall(SYS_perf_event_open, 0, 0, -1, -1, 0));
  probe("keyctl", syscall(SYS_keyctl, 0, 0, 0, 0, 0));
  probe("add_key", syscall(SYS_add_key, "user", "x", "y", 1, -3));
  probe("mount", syscall(SYS_mount, "x", "/tmp", "tmpfs", 0, 0));
  probe("umount2", syscall(SYS_umount2, "/proc", 0));
  probe("pivot_root", syscall(SYS_pivot_root, ".", "."));
  probe("unshare_user", syscall(SYS_unshare, CLONE_NEWUSER));
  probe("unshare_net", syscall(SYS_unshare, CLONE_NEWNET));
  probe("clone_user", syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
  probe("setns", syscall(SYS_setns, 0, 0));
  probe("reboot", syscall(SYS_reboot, 0, 0, 0, 0));
  probe("swapon", syscall(SYS_swapon, "/x", 0));
  probe("acct", syscall(SYS_acct, 0));
  probe("settimeofday", syscall(SYS_settimeofday, 0, 0));
  probe("clock_settime", syscall(SYS_clock_settime, 0, 0));
  probe("syslog", syscall(SYS_syslog, 3, 0, 0));
  probe("userfaultfd", syscall(SYS_userfaultfd, 0));
  probe("open_by_handle_at", syscall(SYS_open_by_handle_at, -1, 0, 0));
  probe("iopl", syscall(SYS_iopl, 3));
  probe("personality_bad", syscall(SYS_personality, 0x0040000));
  probe("personality_query", syscall(SYS_personality, 0xffffffff) < 0 ? -1 : 0);
  probe("getpid", syscall(SYS_getpid) > 0 ? 0 : -1);
  return 0;
}
`;
const DENIED = ['init_module', 'finit_module', 'delete_module', 'kexec_load', 'bpf', 'perf_event_open', 'keyctl', 'add_key', 'mount',
  'umount2', 'pivot_root', 'unshare_user', 'unshare_net', 'clone_user', 'setns', 'reboot', 'swapon', 'acct', 'settimeofday',
  'clock_settime', 'syslog', 'userfaultfd', 'open_by_handle_at', 'iopl', 'personality_bad'];

function statusField(status: string, field: string): string {
  const line = status.split('\n').find((l) => l.startsWith(`${field}:`));
  assert.ok(line, `/proc/self/status has ${field}`);
  return line.slice(field.length + 1).trim();
}

describe('container isolation and escape attempts', { skip: !canRun && 'needs root, busybox-static and g++' }, () => {
  const cgroupParent = `berth-iso-${process.pid}`;
  let work: string;
  let rootfs: string;
  let hostDir: string;
  let rt: NativeRuntime;
  let seq = 0;
  const started = new Set<string>();

  const spec = (args: string[], extra: Partial<ContainerSpec> = {}): ContainerSpec => ({
    id: `iso-${++seq}`,
    hostname: `box-${seq}`,
    lowerDirs: [rootfs],
    args,
    env: ['PATH=/bin'],
    cwd: '/',
    uid: 0,
    gid: 0,
    limits: {},
    labels: { test: 'isolation' },
    ...extra,
  });

  // run starts a container, waits for it and returns its stdout and stderr lines.
  const run = async (args: string[], extra: Partial<ContainerSpec> = {}): Promise<{ out: string[]; err: string[]; code: number | undefined }> => {
    const s = spec(args, extra);
    started.add(s.id);
    await rt.run(s);
    const done = await waitExited(rt, s.id);
    const lines = (await readFile(done.logPath, 'utf8')).split('\n').filter(Boolean);
    const pick = (stream: string) => lines.filter((l) => l.split(' ')[1] === stream).map((l) => l.split(' ').slice(3).join(' '));
    return { out: pick('stdout'), err: pick('stderr'), code: done.exitCode };
  };
  const sh = (script: string, extra: Partial<ContainerSpec> = {}) => run(['sh', '-c', script], extra);

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-iso-'));
    // A user-namespaced init reaches its layers and container dir as an unprivileged host uid.
    await chmod(work, 0o755);
    rootfs = join(work, 'rootfs');
    await mkdir(join(rootfs, 'bin'), { recursive: true });
    await mkdir(join(rootfs, 'tmp'), { recursive: true });
    await addBusybox(rootfs, APPLETS);
    await writeFile(join(work, 'probe.c'), PROBE_SOURCE);
    execFileSync('g++', ['-x', 'c', '-static', '-O1', '-o', join(rootfs, 'bin/probe'), join(work, 'probe.c')]);
    hostDir = join(work, 'host-dir');
    await mkdir(hostDir);
    await writeFile(join(hostDir, 'secret'), 'host\n');
    // A symlink in the image that points at the host dir by absolute host path.
    await symlink(hostDir, join(rootfs, 'escape'));
    rt = new NativeRuntime({ stateDir: join(work, 'state'), cgroupParent });
  });

  after(async () => {
    await removeContainers(rt, started);
    await removeCgroupParent(cgroupParent);
    await rm(work, { recursive: true, force: true });
  });

  it('sees only its own processes', async () => {
    const { out } = await sh('ps -o pid,comm; ls /proc | grep -E "^[0-9]+$"');
    const pids = out.filter((l) => /^[0-9]+$/.test(l)).map(Number);
    assert.ok(pids.includes(1), `pid 1 is the container's init, saw ${pids}`);
    assert.ok(pids.every((p) => p < 10), `only container pids are visible, saw ${pids}`);
  });

  it('cannot mount, load modules, use bpf/keyrings/kexec or create a user namespace (seccomp denies with EPERM)', async () => {
    const { out } = await run(['probe']);
    const errnos = new Map(out.map((l) => l.split(' ') as [string, string]));
    for (const name of DENIED) assert.equal(errnos.get(name), '1', `${name} must fail with EPERM, saw errno ${errnos.get(name)}`);
    assert.equal(errnos.get('personality_query'), '0', 'personality(0xffffffff) stays allowed');
    assert.equal(errnos.get('getpid'), '0');
    const shell = await sh('mount -t tmpfs x /tmp; echo rc=$?; unshare -U true; echo rc=$?');
    const codes = shell.out.filter((l) => l.startsWith('rc='));
    assert.equal(codes.length, 2);
    assert.ok(codes.every((c) => c !== 'rc=0'), `mount and unshare must fail, saw ${codes}`);
  });

  it('runs with Docker\'s 14 capabilities, no_new_privs and a seccomp filter; capAdd/capDrop and a non-root user change that', async () => {
    const caps = async (extra: Partial<ContainerSpec>) => {
      const status = (await sh('cat /proc/self/status', extra)).out.join('\n');
      const hex = (f: string) => BigInt(`0x${statusField(status, f)}`);
      return { eff: hex('CapEff'), bnd: hex('CapBnd'), inh: hex('CapInh'), amb: hex('CapAmb'), nnp: statusField(status, 'NoNewPrivs'), seccomp: statusField(status, 'Seccomp') };
    };
    const def = await caps({});
    assert.equal(def.bnd, DOCKER_DEFAULT_CAPS, `CapBnd ${def.bnd.toString(16)}`);
    assert.equal(def.eff, DOCKER_DEFAULT_CAPS, `CapEff ${def.eff.toString(16)}`);
    assert.equal(def.inh, 0n);
    assert.equal(def.amb, 0n);
    assert.equal(def.nnp, '1');
    assert.equal(def.seccomp, '2');
    const edited = await caps({ security: { capAdd: ['net_admin'], capDrop: ['CAP_CHOWN'] } });
    assert.equal(edited.bnd, (DOCKER_DEFAULT_CAPS | (1n << CAP_NET_ADMIN)) & ~(1n << CAP_CHOWN));
    assert.equal(edited.eff, edited.bnd);
    const user = await caps({ uid: 1000, gid: 1000 });
    assert.equal(user.eff, 0n, 'a non-root user has no effective capabilities');
    assert.equal(user.bnd, DOCKER_DEFAULT_CAPS);
    const none = await caps({ security: { capDrop: ['ALL'], seccomp: 'unconfined' } });
    assert.equal(none.bnd, 0n);
    assert.equal(none.seccomp, '0', 'unconfined turns the filter off');
  });

  it('cannot write /proc/sys or read /proc/kcore, /proc/keys and /sys/firmware', async () => {
    const before = await readFile('/proc/sys/kernel/domainname', 'utf8');
    const { out } = await sh('echo evil > /proc/sys/kernel/domainname; echo rc=$?; cat /proc/kcore 2>/dev/null | wc -c; cat /proc/keys 2>/dev/null | wc -c; ls /sys/firmware | wc -l; touch /proc/sysrq-trigger; echo rc=$?');
    assert.deepEqual(out, ['rc=1', '0', '0', '0', 'rc=1']);
    assert.equal(await readFile('/proc/sys/kernel/domainname', 'utf8'), before, 'host domainname unchanged');
  });

  it('changes only its own hostname', async () => {
    const host = hostHostname();
    // Like Docker, without CAP_SYS_ADMIN the container cannot even rename its own UTS namespace.
    const { out } = await sh('hostname evil-box; echo rc=$?; hostname; cat /etc/hostname');
    assert.equal(out[0], 'rc=1');
    assert.match(out[1]!, /^box-\d+$/);
    assert.equal(out[2], out[1]);
    assert.equal(hostHostname(), host);
  });

  it('cannot reach the host filesystem through a symlink, /proc/self/fd or /proc/1/root', async () => {
    const { out } = await sh('ln -s / /up; cat /up/etc/hostname; cat /proc/1/root/etc/hostname; readlink /proc/self/root; cat /escape/secret; echo rc=$?; ls /proc/self/fd/ > /dev/null; cat /proc/self/cwd/../../../etc/hostname');
    assert.match(out[0]!, /^box-\d+$/);
    assert.equal(out[1], out[0]);
    assert.equal(out[2], '/');
    assert.equal(out[3], 'rc=1', 'the image symlink to a host path dangles inside the container');
    assert.equal(out[4], out[0]);
  });

  it('binds a host dir read-only and resolves bind targets inside the rootfs, never through a planted symlink', async () => {
    const src = join(work, 'data');
    await mkdir(src);
    await writeFile(join(src, 'f'), 'data\n');
    const { out } = await sh('cat /data/f; touch /data/g; echo rc=$?; cat /etc/hostname', {
      mounts: [{ source: src, target: '/data', readonly: true }],
    });
    assert.equal(out[0], 'data');
    assert.equal(out[1], 'rc=1', 'a read-only bind refuses writes');
    assert.match(out[2]!, /^box-\d+$/, '/etc/hostname is still the container\'s own');
    // /escape is a symlink to the host dir by absolute path: inside the rootfs it dangles, so the
    // target cannot be made there and the mount is refused rather than landing on the host.
    const hostMounts = await readFile('/proc/self/mountinfo', 'utf8');
    const s = spec(['true'], { mounts: [{ source: src, target: '/escape/m' }] });
    started.add(s.id);
    await assert.rejects(rt.run(s), /create in rootfs/);
    assert.deepEqual(await readdir(hostDir), ['secret'], 'nothing was created in the host dir');
    assert.equal(await readFile('/proc/self/mountinfo', 'utf8'), hostMounts, 'nothing was mounted on the host');
  });

  it('provides /etc/hosts and /etc/resolv.conf', async () => {
    const { out } = await sh('cat /etc/hosts; echo ---; cat /etc/resolv.conf', { resolvConf: 'nameserver 10.0.0.53\n' });
    assert.ok(out.includes('127.0.0.1\tlocalhost'), `hosts: ${out}`);
    assert.ok(out.some((l) => /^127\.0\.0\.1\tbox-\d+$/.test(l)), `hosts names the container: ${out}`);
    assert.equal(out.at(-1), 'nameserver 10.0.0.53');
  });

  it('makes the rootfs read-only on request', async () => {
    const { out } = await sh('touch /x; echo rc=$?; touch /dev/shm/x; echo rc=$?', { security: { readOnlyRootfs: true } });
    assert.deepEqual(out, ['rc=1', 'rc=0']);
  });

  it('cannot open the init\'s executable for writing, and no process shows a host binary', async () => {
    const { out } = await sh('echo x >> /proc/1/exe; echo rc=$?; for p in /proc/[0-9]*; do readlink $p/exe; done');
    assert.equal(out[0], 'rc=1');
    assert.ok(out.slice(1).every((l) => l === '/bin/busybox'), `exe links: ${out.slice(1)}`);
  });

  it('maps a user-namespaced container\'s root to an unprivileged host uid', async () => {
    const s = spec(['sleep', '1000'], { security: { userNamespace: true } });
    started.add(s.id);
    const st = await rt.run(s);
    const status = await readFile(`/proc/${st.pid}/status`, 'utf8');
    assert.equal(statusField(status, 'Uid').split('\t')[0], '100000');
    assert.equal(statusField(status, 'Gid').split('\t')[0], '100000');
    await rt.stop(s.id, 0);
    const { out } = await sh('id -u; cat /proc/self/uid_map; echo hi > /x && cat /x', { security: { userNamespace: true } });
    assert.equal(out[0], '0');
    assert.match(out[1]!, /^\s*0\s+100000\s+65536$/);
    assert.equal(out[2], 'hi', 'root can write to its own upper layer');
  });

  it('rejects a working directory with ".." components', async () => {
    const s = spec(['true'], { cwd: '/../../etc' });
    started.add(s.id);
    await assert.rejects(rt.run(s), /cwd/);
  });
});

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { AgentError } from '../../agent/errors.js';
import { safeRelativePath, symlinkEscapes, unpackLayer, type UnpackMarks } from '../../agent/images/index.js';

const base = await mkdtemp(`${tmpdir()}/berth-unpack-`);
after(() => rm(base, { recursive: true, force: true }));
let n = 0;

/** makeTar builds a tar with GNU tar from a staging dir prepared by `fill`. */
async function makeTar(fill: (dir: string) => Promise<void>, names: string[], extra: string[] = []): Promise<string> {
  const stage = `${base}/stage-${++n}`;
  await mkdir(stage);
  await fill(stage);
  const out = `${base}/layer-${n}.tar`;
  execFileSync('tar', ['-cf', out, '--format=gnu', '--numeric-owner', ...extra, '-C', stage, ...names]);
  return out;
}

async function unpack(tar: string, marks?: UnpackMarks): Promise<string> {
  const root = `${base}/root-${++n}`;
  await mkdir(root);
  await unpackLayer(createReadStream(tar), root, marks);
  return root;
}

const TABLE: [string, string][] = [['a/b', 'a/b'], ['./a/./b/', 'a/b'], ['.', ''], ['a//b', 'a/b']];
for (const [name, want] of TABLE) test(`safeRelativePath(${name}) = ${want}`, () => assert.equal(safeRelativePath(name), want));
for (const bad of ['/etc/passwd', '../x', 'a/../../x', 'a/..']) {
  test(`safeRelativePath refuses ${bad}`, () => assert.throws(() => safeRelativePath(bad), /BERTH|layer entry/));
}
test('symlinkEscapes: relative targets may not climb above the root; absolute ones are container-relative', () => {
  assert.equal(symlinkEscapes('bin/sh', 'busybox'), false);
  assert.equal(symlinkEscapes('usr/lib/x', '../../lib/x'), false);
  assert.equal(symlinkEscapes('usr/x', '../../../etc/passwd'), true);
  assert.equal(symlinkEscapes('bin/sh', '/bin/busybox'), false);
});

test('whiteouts become 0/0 char devices and opaque markers mark their directory', async () => {
  const tar = await makeTar(async (d) => {
    await mkdir(`${d}/etc/keep`, { recursive: true });
    await writeFile(`${d}/etc/.wh.gone`, '');
    await writeFile(`${d}/etc/keep/.wh..wh..opq`, '');
    await writeFile(`${d}/etc/keep/new`, 'new');
  }, ['etc']);
  const root = `${base}/root-wh`;
  await mkdir(root);
  const seen: { whiteout: string[]; opaque: string[] } = { whiteout: [], opaque: [] };
  const stats = await unpackLayer(createReadStream(tar), root, {
    async whiteout(p) { seen.whiteout.push(p.slice(root.length)); execFileSync('mknod', ['-m', '0', p, 'c', '0', '0']); },
    async opaque(p) { seen.opaque.push(p.slice(root.length)); },
  });
  assert.deepEqual(seen, { whiteout: ['/etc/gone'], opaque: ['/etc/keep'] });
  assert.deepEqual([stats.whiteouts, stats.opaqueDirs], [1, 1]);
  const st = await lstat(`${root}/etc/gone`);
  assert.ok(st.isCharacterDevice() && st.rdev === 0, 'etc/gone is a 0/0 char device');
  await assert.rejects(lstat(`${root}/etc/.wh.gone`), { code: 'ENOENT' });
  await assert.rejects(lstat(`${root}/etc/keep/.wh..wh..opq`), { code: 'ENOENT' });
  assert.equal(await readFile(`${root}/etc/keep/new`, 'utf8'), 'new');
});

test('the real opaque mark sets trusted.overlay.opaque=y (setfattr or the perl fallback)', { skip: process.arch !== 'x64' && 'getxattr syscall number is x86-64 only' }, async () => {
  const tar = await makeTar(async (d) => {
    await mkdir(`${d}/dir`);
    await writeFile(`${d}/dir/.wh..wh..opq`, '');
  }, ['dir']);
  const root = await unpack(tar);
  const value = execFileSync('perl', ['-e', 'my ($p, $k, $b) = ($ARGV[0], "trusted.overlay.opaque", "\\0" x 8); my $n = syscall(191, $p, $k, $b, 8); print substr($b, 0, $n) if $n > 0', `${root}/dir`]).toString();
  assert.equal(value, 'y');
});

test('files, modes, symlinks and hardlinks are reproduced', async () => {
  const tar = await makeTar(async (d) => {
    await mkdir(`${d}/bin`);
    await writeFile(`${d}/bin/tool`, '#!/bin/sh\n', { mode: 0o755 });
    await symlink('tool', `${d}/bin/alias`);
    execFileSync('ln', [`${d}/bin/tool`, `${d}/bin/hard`]);
  }, ['bin']);
  const root = await unpack(tar);
  assert.equal((await lstat(`${root}/bin/tool`)).mode & 0o777, 0o755);
  assert.equal(await readlink(`${root}/bin/alias`), 'tool');
  assert.equal((await lstat(`${root}/bin/hard`)).ino, (await lstat(`${root}/bin/tool`)).ino);
});

const UNSAFE: [string, (d: string) => Promise<void>, string[], string[], RegExp][] = [
  ['an absolute path', async (d) => { await writeFile(`${d}/abs`, 'x'); }, [`--transform=s,^,${'/'},`, '-P'], ['abs'], /"\/abs": absolute path/],
  ['a .. path', async (d) => { await writeFile(`${d}/up`, 'x'); }, ['--transform=s,^,../,'], ['up'], /"\.\.\/up": path contains '\.\.'/],
  ['a symlink escaping the root', async (d) => { await symlink('../../../etc/passwd', `${d}/esc`); }, [], ['esc'], /"esc": symlink target/],
  ['a write through a symlinked parent', async (d) => { await symlink('/tmp', `${d}/link`); await mkdir(`${d}/real`); await writeFile(`${d}/real/f`, 'x'); },
    ['--no-recursion', '--transform=s,^real,link,'], ['link', 'real/f'], /"link\/f": parent "link" is a symlink/],
];
for (const [what, fill, extra, names, msg] of UNSAFE) {
  test(`unpacking refuses ${what} with an error naming the entry`, async () => {
    const tar = await makeTar(fill, names, extra);
    const root = `${base}/root-unsafe-${++n}`;
    await mkdir(root);
    await assert.rejects(unpackLayer(createReadStream(tar), root), (e: unknown) => {
      assert.ok(e instanceof AgentError, `expected AgentError, got ${String(e)}`);
      assert.equal(e.code, 'BERTH_ERR_IMAGE_UNSAFE_ENTRY');
      assert.match(e.message, msg);
      return true;
    });
  });
}

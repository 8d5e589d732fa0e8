/**
 * A task's phases are defined once (common/task-status.ts) for the control plane, the agent and
 * the CLI. The classification is a mapped type over TaskPhase, so a phase cannot be left out of
 * it without a compile error; these tests pin what it says, and guard against a second copy,
 * which drifts: a hand-kept terminal set that misses `lost` is the bug this prevents.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AGENT_PHASES, isTerminal, TERMINAL_PHASES, type TaskPhase } from '../../common/task-status.js';
import { REPO_ROOT } from '../support/cluster.js';

const EVERY_PHASE: TaskPhase[] = ['pending', 'assigned', 'preparing', 'starting', 'running', 'succeeded', 'failed', 'lost', 'stopped'];

test('terminal phases are exactly succeeded, failed, lost and stopped (DESIGN.md, "Task phases")', () => {
  assert.deepEqual(EVERY_PHASE.filter(isTerminal), ['succeeded', 'failed', 'lost', 'stopped']);
  assert.deepEqual([...TERMINAL_PHASES].sort(), ['failed', 'lost', 'stopped', 'succeeded']);
  assert.equal(isTerminal(undefined), false, 'a task never reported is not terminal');
});

test('an agent reports every phase but pending, assigned (the scheduler\'s) and lost (node lifecycle\'s)', () => {
  assert.deepEqual(EVERY_PHASE.filter((p) => AGENT_PHASES.has(p)), ['preparing', 'starting', 'running', 'succeeded', 'failed', 'stopped']);
});

test('the phase vocabulary is declared once: no module outside common/ declares TaskPhase, TaskStatus or a phase set', () => {
  const declaration = /\b(type\s+TaskPhase\s*=|interface\s+TaskStatus\b|(TERMINAL_PHASES|AGENT_PHASES)\s*[:=])/;
  const offenders: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path);
      else if (e.name.endsWith('.ts') && declaration.test(readFileSync(path, 'utf8'))) offenders.push(path.slice(REPO_ROOT.length + 1));
    }
  };
  for (const dir of ['agent', 'control-plane']) walk(join(REPO_ROOT, dir));
  assert.deepEqual(offenders, [], 'import them from common/task-status.ts; translate the wire at the boundary (agent/convert.ts, control-plane/gateway/convert.ts)');
});

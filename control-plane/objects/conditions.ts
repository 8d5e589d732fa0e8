/** Helpers over conditions and phases shared by controllers, gateway and API. */
import type { Condition, Node } from './types.js';

export { TERMINAL_PHASES } from '../../common/task-status.js';

/** getCondition finds the condition of type in conds. */
export function getCondition(conds: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conds?.find((c) => c.type === type);
}

/**
 * setCondition returns conds with c applied, keeping lastTransitionTime when the status did not
 * change; changed is false when nothing (status, reason, message) differs.
 */
export function setCondition(conds: readonly Condition[] | undefined, c: Omit<Condition, 'lastTransitionTime'>, now: string): { conditions: Condition[]; changed: boolean } {
  const list = [...(conds ?? [])];
  const i = list.findIndex((x) => x.type === c.type);
  const old = i >= 0 ? list[i] : undefined;
  if (old && old.status === c.status && old.reason === c.reason && old.message === c.message) return { conditions: list, changed: false };
  const next: Condition = { ...c, lastTransitionTime: old && old.status === c.status ? old.lastTransitionTime : now };
  if (i >= 0) list[i] = next;
  else list.push(next);
  return { conditions: list, changed: true };
}

/** isNodeReady tells whether a node's Ready condition is True. */
export function isNodeReady(node: Node | undefined): boolean {
  return getCondition(node?.status?.conditions, 'Ready')?.status === 'True';
}

/**
 * The reconciler: this node's desired tasks → local containers. What the rest of the agent (and
 * tests) use of it; the files behind it are reconciler.ts (the desired set, admission and the
 * sync loop), task-runner.ts (one task's container, start to stop), admission.ts, spec.ts,
 * status.ts, restart.ts, pull.ts, health.ts and task.ts (the domain types the session converts to).
 */
export { DEFAULT_RESYNC_MS, Reconciler, SYNC_RETRY_MS, type ReconcilerOptions } from './reconciler.js';
export { DEFAULT_STOP_GRACE_MS, UNHEALTHY_STOP_GRACE_MS } from './task-runner.js';
export type { TaskStatusView } from './status.js';
export type { DesiredState, DesiredTask, Resources, TaskRef, TaskTemplate } from './task.js';

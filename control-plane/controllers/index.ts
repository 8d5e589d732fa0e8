/**
 * The controllers as one startable/stoppable unit, so leader election can wrap them:
 * start on gaining leadership, stop on losing it.
 */
import type { Logger } from '../../common/log.js';
import type { Informers } from '../store/informers.js';
import type { Store } from '../store/store.js';
import { TaskEventWatcher } from './events.js';
import { DEFAULT_NODE_LOST_GRACE_MS, NodeLifecycleController } from './node-lifecycle.js';
import { SchedulerLoop } from './scheduler-loop.js';
import { ServiceController } from './service-controller.js';

/** CONTROLLERS_STOP_WAIT_MS bounds how long stop() waits for in-flight syncs. */
export const CONTROLLERS_STOP_WAIT_MS = 5_000;

/** Controllers is the running set; stop() waits for in-flight syncs, at most CONTROLLERS_STOP_WAIT_MS. */
export interface Controllers {
  stop(): Promise<void>;
}

/** ControllerOptions tunes the controllers; every field has a default. */
export interface ControllerOptions {
  /** nodeLostGraceMs is how long a node stays not Ready before its tasks are marked lost. */
  nodeLostGraceMs?: number;
}

/**
 * startControllers starts the service controller, the scheduler loop, node lifecycle and task
 * events once the caches have caught up with etcd: a new leader's mirror may lag the writes its
 * predecessor made just before it fell, and acting on it would create replicas that exist.
 */
export function startControllers(inf: Informers, store: Store, log: Logger, opts: ControllerOptions = {}): Controllers {
  const all = [
    new NodeLifecycleController(inf, store, log.child('nodes'), opts.nodeLostGraceMs ?? DEFAULT_NODE_LOST_GRACE_MS),
    new TaskEventWatcher(inf, store, log.child('events')),
    new ServiceController(inf, store, log.child('services')),
    new SchedulerLoop(inf, store, log.child('scheduler')),
  ];
  let stopped = false;
  const started = Promise.all([inf.services, inf.tasks, inf.nodes].map((c) => c.catchUp())).then((caught) => {
    // Not caught up means etcd is unreachable: writes fail too, and the scheduler catches up before each placement.
    if (!caught.every(Boolean)) log.warn('starting controllers before the caches caught up with etcd');
    if (!stopped) for (const c of all) c.start();
  });
  return {
    stop: async () => {
      stopped = true;
      const done = started.then(() => Promise.all(all.map((c) => c.stop()))).then(() => true);
      // A sync stuck on an etcd call that never answers must not hold the election: a deposed
      // leader's writes are fenced by its guard, so whatever it still has in flight cannot land.
      let timer: NodeJS.Timeout | undefined;
      const finished = await Promise.race([done, new Promise<false>((r) => { timer = setTimeout(() => r(false), CONTROLLERS_STOP_WAIT_MS); })]);
      clearTimeout(timer);
      if (!finished) log.warn('controllers still finishing after being stopped; their writes are fenced', { waitedMs: CONTROLLERS_STOP_WAIT_MS });
    },
  };
}

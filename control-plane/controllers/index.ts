/**
 * The controllers as one startable/stoppable unit, so leader election (issue 5) can wrap them:
 * start on gaining leadership, stop on losing it.
 */
import type { Logger } from '../../common/log.js';
import type { Informers } from '../store/informers.js';
import type { Store } from '../store/store.js';
import { NodeLifecycleController } from './node-lifecycle.js';
import { SchedulerLoop } from './scheduler-loop.js';
import { ServiceController } from './service-controller.js';

/** Controllers is the running set; stop() waits for in-flight syncs. */
export interface Controllers {
  stop(): Promise<void>;
}

/** startControllers starts the service controller, the scheduler loop and node lifecycle. */
export function startControllers(inf: Informers, store: Store, log: Logger): Controllers {
  const all = [
    new NodeLifecycleController(inf, store, log.child('nodes')),
    new ServiceController(inf, store, log.child('services')),
    new SchedulerLoop(inf, store, log.child('scheduler')),
  ];
  for (const c of all) c.start();
  return { stop: async () => { await Promise.all(all.map((c) => c.stop())); } };
}

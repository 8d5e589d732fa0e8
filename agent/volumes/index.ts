/** Named node-local volumes (manager.ts), their disk usage (usage.ts) and container label (labels.ts). */
export {
  IN_USE_INTERVAL_MS, START_HOLD_MS, USAGE_INTERVAL_MS, VolumeManager, noticeablyDifferent,
  type VolumeDeleteOutcome, type VolumeInfo, type VolumeManagerOptions, type VolumeProvider,
} from './manager.js';
export { LABEL_VOLUMES, volumesOfLabels } from './labels.js';
export { diskUsageBytes } from './usage.js';

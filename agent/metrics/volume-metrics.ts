/**
 * Named volumes on :9480/metrics: each volume's disk usage and how many there are, read from the
 * volume manager's last measurement on every scrape (a scrape never walks a volume itself).
 */
import { Gauge, type Registry } from 'prom-client';

/** VolumeUsage is what the series need of one volume. */
export interface VolumeUsage {
  namespace: string;
  name: string;
  sizeBytes: number;
  inUse: boolean;
}

/** registerVolumeMetrics adds berth_volume_bytes{namespace,volume} and berth_volumes{state} to registry. */
export function registerVolumeMetrics(registry: Registry, list: () => readonly VolumeUsage[]): void {
  new Gauge({
    name: 'berth_volume_bytes',
    help: 'Disk usage of a named volume on this node in bytes, as last measured (du-like, every minute and after changes).',
    labelNames: ['namespace', 'volume'],
    registers: [registry],
    collect() {
      // Reset first, so a deleted volume's series vanishes.
      this.reset();
      for (const v of list()) this.set({ namespace: v.namespace, volume: v.name }, v.sizeBytes);
    },
  });
  new Gauge({
    name: 'berth_volumes',
    help: 'Named volumes on this node, by state (in-use: a container mounts it; unused).',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const all = list();
      const inUse = all.filter((v) => v.inUse).length;
      this.set({ state: 'in-use' }, inUse);
      this.set({ state: 'unused' }, all.length - inUse);
    },
  });
}

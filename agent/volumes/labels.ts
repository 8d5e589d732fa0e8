/**
 * LABEL_VOLUMES is the container label listing the named volumes it mounts, as
 * "<namespace>/<name>" separated by commas: the agent tells a volume in use from the containers
 * the runtime holds, which survive an agent restart (no record of its own to keep in step).
 */
export const LABEL_VOLUMES = 'berth.volumes';

/** volumesOfLabels reads LABEL_VOLUMES; an absent label is none. */
export function volumesOfLabels(labels: Readonly<Record<string, string>>): string[] {
  const raw = labels[LABEL_VOLUMES];
  return raw ? raw.split(',').filter((v) => v !== '') : [];
}

/**
 * Image garbage collection, planned as a pure function so its rules are table-tested: an image
 * goes when no container uses it and it has been idle longer than `maxIdleMs`, or, while the
 * store is over `budgetBytes`, least recently used first. A layer goes when no remaining image
 * lists it and no container or in-flight pull holds it. Nothing used within `graceMs` goes at
 * all: between resolving an image and starting its container there is no container yet.
 */

/** DEFAULT_IMAGE_GC_AFTER_MS is how long an unused image stays (agent config imageGcAfterSeconds). */
export const DEFAULT_IMAGE_GC_AFTER_MS = 60 * 60 * 1000;
/** DEFAULT_IMAGE_STORE_BUDGET_BYTES is the store size above which LRU images go (imageStoreBudgetBytes). */
export const DEFAULT_IMAGE_STORE_BUDGET_BYTES = 20 * 1024 ** 3;
/** IMAGE_GC_GRACE_MS protects a just-resolved image whose container is still being created. */
export const IMAGE_GC_GRACE_MS = 60 * 1000;
/** IMAGE_GC_INTERVAL_MS is how often the agent collects. */
export const IMAGE_GC_INTERVAL_MS = 5 * 60 * 1000;

/** GcImage is what the planner needs of one image. */
export interface GcImage {
  digest: string;
  chainIds: string[];
  lastUsedMs: number;
}

/** GcInput is a snapshot of the store and its users. */
export interface GcInput {
  images: GcImage[];
  /** layerBytes lists every layer on disk with its size (layers without an image included). */
  layerBytes: Map<string, number>;
  /** inUseDigests are images of containers present in the runtime (running or exited). */
  inUseDigests: ReadonlySet<string>;
  /** inUseLayers are chain ids held by containers or pulls in flight, whatever their image. */
  inUseLayers: ReadonlySet<string>;
  nowMs: number;
  maxIdleMs: number;
  budgetBytes: number;
  graceMs: number;
}

/** GcPlan is what to delete, in order: images first, then layers. */
export interface GcPlan {
  images: string[];
  layers: string[];
  /** bytesAfter is the store size once the plan is carried out. */
  bytesAfter: number;
}

/** planGc decides which images and layers to remove; it never picks one in use. */
export function planGc(input: GcInput): GcPlan {
  const inUse = (img: GcImage): boolean => input.inUseDigests.has(img.digest);
  const protectedLayers = new Set(input.inUseLayers);
  for (const img of input.images) if (inUse(img)) for (const c of img.chainIds) protectedLayers.add(c);

  const removable = input.images
    .filter((img) => !inUse(img) && input.nowMs - img.lastUsedMs >= input.graceMs)
    .sort((a, b) => a.lastUsedMs - b.lastUsedMs || a.digest.localeCompare(b.digest));
  const removed = new Set<string>();
  for (const img of removable) if (input.nowMs - img.lastUsedMs > input.maxIdleMs) removed.add(img.digest);

  const keptLayers = (): Set<string> => {
    const keep = new Set(protectedLayers);
    for (const img of input.images) if (!removed.has(img.digest)) for (const c of img.chainIds) keep.add(c);
    return keep;
  };
  const sizeOf = (layers: Set<string>): number => [...layers].reduce((sum, c) => sum + (input.layerBytes.get(c) ?? 0), 0);

  let keep = keptLayers();
  for (const img of removable) {
    if (sizeOf(keep) <= input.budgetBytes) break;
    if (removed.has(img.digest)) continue;
    removed.add(img.digest);
    keep = keptLayers();
  }
  const layers = [...input.layerBytes.keys()].filter((c) => !keep.has(c)).sort();
  return { images: input.images.filter((i) => removed.has(i.digest)).map((i) => i.digest), layers, bytesAfter: sizeOf(keep) };
}

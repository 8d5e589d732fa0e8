/** The agent's image module: references, the layer store, unpacking and garbage collection. */
export { parseImageReference, type ImageReference } from './reference.js';
export {
  ImageStore, chainIds, DEFAULT_MAX_LAYER_BYTES,
  type ContainerUse, type Images, type ImageStoreOptions, type PullPolicy, type ResolvedImage, type ResolveOptions, type StoredImage,
} from './store.js';
export type { ImageConfig } from './image-config.js';
export { unpackLayer, safeRelativePath, symlinkEscapes, type UnpackLimits, type UnpackMarks, type UnpackStats } from './layer-unpack.js';
export { planGc, DEFAULT_IMAGE_GC_AFTER_MS, DEFAULT_IMAGE_STORE_BUDGET_BYTES, IMAGE_GC_INTERVAL_MS, type GcInput, type GcPlan } from './gc.js';

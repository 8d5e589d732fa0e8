/** The agent's image module: references, the layer store and unpacking. */
export { parseImageReference, type ImageReference } from './reference.js';
export { ImageStore, chainIds, type Images, type ImageStoreOptions, type ResolvedImage } from './store.js';
export type { ImageConfig } from './image-config.js';
export { unpackLayer, safeRelativePath, symlinkEscapes, type UnpackMarks, type UnpackStats } from './layer-unpack.js';

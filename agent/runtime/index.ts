import { NativeRuntime, type NativeRuntimeOptions } from './native-runtime.js';
import type { Runtime } from './runtime.js';

export type { ContainerLimits, ContainerSpec, ContainerState, ContainerStats, Runtime } from './runtime.js';
export { RuntimeError, type RuntimeErrorCode } from './errors.js';
export type { NativeRuntimeOptions } from './native-runtime.js';

/** createRuntime returns the host's container runtime (the native core through berth-shim). */
export function createRuntime(options: NativeRuntimeOptions): Runtime {
  return new NativeRuntime(options);
}

/** The parts of an OCI image config the agent uses to build a container, validated. */
import { AgentError } from '../errors.js';

/** ImageConfig holds the image's run defaults (OCI image config `config` section). */
export interface ImageConfig {
  entrypoint: string[];
  cmd: string[];
  env: string[];
  workingDir: string;
  user: string;
}

/** ImageDocument is the validated config blob: run defaults plus the layers' diff ids. */
export interface ImageDocument {
  config: ImageConfig;
  diffIds: string[];
}

function strings(v: unknown, field: string, label: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) {
    throw new AgentError('BERTH_ERR_IMAGE_INVALID', `${label}: config field ${field} must be a list of strings`);
  }
  return v as string[];
}

function str(v: unknown, field: string, label: string): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new AgentError('BERTH_ERR_IMAGE_INVALID', `${label}: config field ${field} must be a string`);
  return v;
}

/** parseImageConfig validates an image config document. */
export function parseImageConfig(doc: unknown, label: string): ImageDocument {
  if (typeof doc !== 'object' || doc === null) throw new AgentError('BERTH_ERR_IMAGE_INVALID', `${label}: config is not an object`);
  const d = doc as Record<string, unknown>;
  const c = (typeof d.config === 'object' && d.config !== null ? d.config : {}) as Record<string, unknown>;
  const rootfs = (typeof d.rootfs === 'object' && d.rootfs !== null ? d.rootfs : {}) as Record<string, unknown>;
  const diffIds = strings(rootfs.diff_ids, 'rootfs.diff_ids', label);
  return {
    config: {
      entrypoint: strings(c.Entrypoint, 'Entrypoint', label),
      cmd: strings(c.Cmd, 'Cmd', label),
      env: strings(c.Env, 'Env', label),
      workingDir: str(c.WorkingDir, 'WorkingDir', label),
      user: str(c.User, 'User', label),
    },
    diffIds,
  };
}

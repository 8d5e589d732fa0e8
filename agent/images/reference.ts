/**
 * Image references the agent understands: local OCI layouts and archives, and registry names
 * `HOST[:PORT]/NAME[:TAG|@sha256:…]` with Docker Hub's defaults (distribution/reference rules).
 */
import { AgentError } from '../errors.js';

/** RegistryReference is a validated, normalised registry image name. */
export interface RegistryReference {
  /** host is the registry as written (`docker.io` for Hub names), with its port if any. */
  host: string;
  /** endpoint is where the API lives (`registry-1.docker.io` for docker.io). */
  endpoint: string;
  /** repository is the path in the registry, e.g. `library/busybox`. */
  repository: string;
  tag?: string;
  digest?: string;
  /** canonical is `host/repository:tag` or `host/repository@digest`. */
  canonical: string;
}

/** ImageReference is a parsed `image:` string from a container template. */
export type ImageReference =
  | { kind: 'oci-archive'; raw: string; path: string }
  | { kind: 'oci'; raw: string; path: string; tag?: string }
  | { kind: 'registry'; raw: string; registry: RegistryReference };

/** parseImageReference parses `oci-archive:/abs.tar`, `oci:/abs/layout[:tag]` or a registry name. */
export function parseImageReference(raw: string): ImageReference {
  const ref = raw.trim();
  if (ref === '') throw new AgentError('BERTH_ERR_IMAGE_INVALID', 'image reference is empty');
  if (ref.startsWith('oci-archive:')) {
    const path = ref.slice('oci-archive:'.length);
    requireAbsolute(ref, path);
    return { kind: 'oci-archive', raw: ref, path };
  }
  if (ref.startsWith('oci:')) {
    const rest = ref.slice('oci:'.length);
    // The tag is whatever follows the last ':' after the last '/', so paths may hold colons
    // in directory names but the layout directory's own name may not.
    const slash = rest.lastIndexOf('/');
    const colon = rest.indexOf(':', slash + 1);
    const path = colon === -1 ? rest : rest.slice(0, colon);
    const tag = colon === -1 ? undefined : rest.slice(colon + 1);
    requireAbsolute(ref, path);
    if (tag !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(tag)) {
      throw new AgentError('BERTH_ERR_IMAGE_INVALID', `image ${ref}: invalid tag ${JSON.stringify(tag)}`);
    }
    return tag === undefined ? { kind: 'oci', raw: ref, path } : { kind: 'oci', raw: ref, path, tag };
  }
  return { kind: 'registry', raw: ref, registry: parseRegistryReference(ref) };
}

const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_ENDPOINT = 'registry-1.docker.io';
const MAX_REPOSITORY_CHARS = 255;
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

function bad(raw: string, why: string): AgentError {
  return new AgentError('BERTH_ERR_IMAGE_INVALID', `image ${raw}: ${why}`);
}

/**
 * parseRegistryReference parses `HOST[:PORT]/NAME[:TAG|@sha256:…]`: a first component holding
 * '.', ':' or equal to `localhost` is the registry host, otherwise Docker Hub is meant
 * (`busybox` → `docker.io/library/busybox:latest`). A digest wins over a tag; no tag means latest.
 */
export function parseRegistryReference(raw: string): RegistryReference {
  let rest = raw;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad(raw, `invalid digest ${JSON.stringify(digest)} (want sha256: and 64 lowercase hex digits)`);
  }
  let tag: string | undefined;
  const colon = rest.indexOf(':', rest.lastIndexOf('/') + 1);
  if (colon !== -1) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(raw, `invalid tag ${JSON.stringify(tag)}`);
  }
  const slash = rest.indexOf('/');
  const first = slash === -1 ? '' : rest.slice(0, slash);
  let host = DOCKER_HUB;
  let repository = rest;
  if (first !== '' && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    host = first;
    repository = rest.slice(slash + 1);
    if (!HOST.test(host)) throw bad(raw, `invalid registry host ${JSON.stringify(host)}`);
  }
  if (host === 'index.docker.io') host = DOCKER_HUB;
  if (host === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  if (repository === '') throw bad(raw, 'repository name is empty');
  if (repository.length > MAX_REPOSITORY_CHARS) throw bad(raw, `repository name longer than ${MAX_REPOSITORY_CHARS} characters`);
  for (const part of repository.split('/')) {
    if (!COMPONENT.test(part)) {
      throw bad(raw, `invalid repository component ${JSON.stringify(part)} (lowercase letters, digits and single separators . _ __ -)`);
    }
  }
  if (digest === undefined && tag === undefined) tag = 'latest';
  const endpoint = host === DOCKER_HUB ? DOCKER_HUB_ENDPOINT : host;
  const canonical = digest !== undefined ? `${host}/${repository}@${digest}` : `${host}/${repository}:${tag}`;
  const out: RegistryReference = { host, endpoint, repository, canonical };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  return out;
}

function requireAbsolute(ref: string, path: string): void {
  if (!path.startsWith('/') || path.split('/').includes('..')) {
    throw new AgentError('BERTH_ERR_IMAGE_INVALID', `image ${ref}: path must be absolute and free of '..'`);
  }
  if (path.length === 1) throw new AgentError('BERTH_ERR_IMAGE_INVALID', `image ${ref}: path is empty`);
}

/**
 * Manifest documents as a registry serves them: the media types we ask for (containerd's Accept
 * list), telling an index from an image manifest, and choosing one platform from an index.
 */
import { AgentError } from '../../errors.js';
import type { Descriptor } from '../oci-source.js';

/** MEDIA_TYPES names the manifest kinds berth pulls. */
export const MEDIA_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

/** MANIFEST_ACCEPT is the Accept header containerd sends for manifests (plus a wildcard fallback). */
export const MANIFEST_ACCEPT = [
  MEDIA_TYPES.dockerManifest,
  MEDIA_TYPES.dockerList,
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.ociIndex,
  '*/*',
].join(', ');

/** MAX_MANIFEST_BYTES bounds a manifest or index read into memory. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** Platform is an OCI platform (os/architecture[/variant]). */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** ManifestKind says whether a document is an index (list of platforms) or one image. */
export type ManifestKind = 'index' | 'manifest';

const GOARCH: Partial<Record<string, string>> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** hostPlatform is this node's platform in Go/OCI terms (x64 → amd64; arm gets its variant). */
export function hostPlatform(arch: string = process.arch, armVersion?: string): Platform {
  const architecture = GOARCH[arch] ?? arch;
  if (architecture === 'arm') return { os: 'linux', architecture, variant: `v${armVersion ?? armVersionOfNode() ?? '7'}` };
  if (architecture === 'arm64') return { os: 'linux', architecture, variant: 'v8' };
  return { os: 'linux', architecture };
}

function armVersionOfNode(): string | undefined {
  const v = (process.config.variables as Record<string, unknown>).arm_version;
  return typeof v === 'string' || typeof v === 'number' ? String(v) : undefined;
}

/** platformString renders os/arch[/variant]. */
export function platformString(p: Partial<Platform> | undefined): string {
  if (!p) return 'unknown';
  return [p.os ?? '?', p.architecture ?? '?', ...(p.variant ? [p.variant] : [])].join('/');
}

/** kindOf classifies a manifest by media type (header or body), refusing what berth cannot run. */
export function kindOf(mediaType: string, label: string): ManifestKind {
  switch (mediaType) {
    case MEDIA_TYPES.ociIndex:
    case MEDIA_TYPES.dockerList:
      return 'index';
    case MEDIA_TYPES.ociManifest:
    case MEDIA_TYPES.dockerManifest:
      return 'manifest';
    default:
      throw new AgentError('BERTH_ERR_IMAGE_INVALID', `${label}: unsupported manifest media type ${JSON.stringify(mediaType)}`);
  }
}

/**
 * manifestMediaType decides a document's media type: the body's own `mediaType` wins, then the
 * Content-Type header; an OCI manifest may omit both, so a `layers` list means an image manifest.
 */
export function manifestMediaType(doc: unknown, contentType: string | undefined): string {
  const d = doc as Record<string, unknown> | null;
  if (d && typeof d.mediaType === 'string' && d.mediaType !== '') return d.mediaType;
  const header = contentType?.split(';')[0]?.trim() ?? '';
  if (header !== '' && header !== 'application/json' && header !== 'application/octet-stream') return header;
  if (d && Array.isArray(d.manifests)) return MEDIA_TYPES.ociIndex;
  return MEDIA_TYPES.ociManifest;
}

/** variantMatches treats a missing variant as the default one (arm64 → v8, arm → v7). */
function variantMatches(want: Platform, got: string | undefined): boolean {
  if (want.variant === undefined || got === undefined || got === '') return true;
  return want.variant === got;
}

/**
 * selectPlatform picks the entry of an index for `want`: os and architecture must match; an
 * exact variant beats a missing one. With no match the error lists every platform offered.
 */
export function selectPlatform(manifests: Descriptor[], want: Platform, label: string): Descriptor {
  const of = (d: Descriptor): Partial<Platform> => (d.platform ?? {}) as Partial<Platform>;
  const candidates = manifests.filter((d) => of(d).os === want.os && of(d).architecture === want.architecture && variantMatches(want, of(d).variant));
  const exact = candidates.find((d) => want.variant !== undefined && of(d).variant === want.variant);
  const pick = exact ?? candidates[0];
  if (!pick) {
    const offered = manifests.map((d) => platformString(of(d))).join(', ') || 'none';
    throw new AgentError('BERTH_ERR_IMAGE_NOT_FOUND', `${label}: no image for platform ${platformString(want)}; the index offers ${offered}`);
  }
  return pick;
}

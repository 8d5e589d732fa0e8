/**
 * Planning an image from an OCI layout or oci-archive: pick the manifest (by tag, or the only
 * one, or `latest`; one index level deep by platform), verify manifest and config, and list the
 * layers with their blob and diff digests. Nothing is unpacked here.
 */
import { AgentError } from '../errors.js';
import { parseImageConfig } from './image-config.js';
import { parseJson, readVerifiedBlob, type BlobSource, type Descriptor, type ImagePlan } from './oci-source.js';

const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
const MANIFEST_TYPES = new Set(['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json']);
const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);
const GOARCH: Partial<Record<NodeJS.Architecture, string>> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386' };

function invalid(label: string, what: string): AgentError {
  return new AgentError('BERTH_ERR_IMAGE_INVALID', `${label}: ${what}`);
}

function asDescriptor(v: unknown, label: string, where: string): Descriptor {
  const d = v as Partial<Descriptor> | null;
  if (typeof d !== 'object' || d === null || typeof d.digest !== 'string' || typeof d.size !== 'number') {
    throw invalid(label, `${where} is not a valid descriptor`);
  }
  return { ...d, mediaType: typeof d.mediaType === 'string' ? d.mediaType : '' } as Descriptor;
}

function listOf(doc: unknown, field: string, label: string, what: string): unknown[] {
  const v = (doc as Record<string, unknown> | null)?.[field];
  if (!Array.isArray(v)) throw invalid(label, `${what} has no ${field} list`);
  return v;
}

/** layerCompression maps a layer media type to how its bytes are compressed. */
export function layerCompression(mediaType: string, label: string): 'gzip' | 'none' {
  if (mediaType.endsWith('+gzip') || mediaType.endsWith('.tar.gzip')) return 'gzip';
  if (mediaType.endsWith('.tar') || mediaType.endsWith('layer.v1.tar')) return 'none';
  throw invalid(label, `unsupported layer media type ${JSON.stringify(mediaType)}`);
}

/** planOciImage resolves a layout's image (by tag, or the only one, or `latest`) to a plan. */
export async function planOciImage(src: BlobSource, tag: string | undefined): Promise<ImagePlan> {
  const manifestDesc = await selectManifest(src, tag);
  const manifestBuf = await readVerifiedBlob(src, manifestDesc);
  const manifest = parseJson(manifestBuf, src.label, 'manifest');
  const configDesc = asDescriptor((manifest as Record<string, unknown>).config, src.label, 'manifest config');
  const layerDescs = listOf(manifest, 'layers', src.label, 'manifest').map((l, i) => asDescriptor(l, src.label, `layer ${i}`));
  const configBuf = await readVerifiedBlob(src, configDesc);
  const doc = parseImageConfig(parseJson(configBuf, src.label, 'config'), src.label);
  if (doc.diffIds.length !== layerDescs.length) {
    throw invalid(src.label, `config lists ${doc.diffIds.length} diff ids for ${layerDescs.length} layers`);
  }
  const layers = layerDescs.map((d, i) => ({
    digest: d.digest,
    diffId: doc.diffIds[i]!,
    blobDigest: d.digest,
    size: d.size,
    compression: layerCompression(d.mediaType, src.label),
    open: () => src.openBlob(d.digest),
  }));
  return {
    label: src.label,
    digest: manifestDesc.digest,
    config: doc.config,
    diffIds: doc.diffIds,
    layers,
    documents: new Map([[manifestDesc.digest, manifestBuf], [configDesc.digest, configBuf]]),
  };
}

/** selectManifest picks the manifest by tag (or the only/`latest` one), following one index level by platform. */
async function selectManifest(src: BlobSource, tag: string | undefined): Promise<Descriptor> {
  const index = parseJson(await src.readIndex(), src.label, 'index.json');
  const all = listOf(index, 'manifests', src.label, 'index.json').map((m, i) => asDescriptor(m, src.label, `index.json manifest ${i}`));
  const named = (t: string): Descriptor[] => all.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] === t);
  let pick: Descriptor | undefined;
  if (tag !== undefined) {
    pick = named(tag)[0];
    if (!pick) throw new AgentError('BERTH_ERR_IMAGE_NOT_FOUND', `${src.label}: no image tagged ${tag}`);
  } else if (new Set(all.map((d) => d.digest)).size === 1) {
    pick = all[0];
  } else {
    pick = named('latest')[0];
    if (!pick) throw invalid(src.label, `${all.length} images in index.json and none tagged latest; name a tag`);
  }
  if (!pick) throw invalid(src.label, 'index.json lists no images');
  if (INDEX_TYPES.has(pick.mediaType)) {
    const nested = parseJson(await readVerifiedBlob(src, pick), src.label, 'image index');
    const arch = GOARCH[process.arch] ?? process.arch;
    const candidates = listOf(nested, 'manifests', src.label, 'image index').map((m, i) => asDescriptor(m, src.label, `image index manifest ${i}`));
    const forUs = candidates.find((d) => d.platform?.os === 'linux' && d.platform?.architecture === arch);
    if (!forUs) throw new AgentError('BERTH_ERR_IMAGE_NOT_FOUND', `${src.label}: no image for linux/${arch}`);
    pick = forUs;
  }
  if (pick.mediaType !== '' && !MANIFEST_TYPES.has(pick.mediaType)) {
    throw invalid(src.label, `unsupported manifest media type ${JSON.stringify(pick.mediaType)}`);
  }
  return pick;
}

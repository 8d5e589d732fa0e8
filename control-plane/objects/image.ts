/** Image reference syntax accepted on admission (pulling registries comes in a later issue). */

const HOST = /^(localhost|[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)+|\[[0-9a-fA-F:]+\])(:\d{1,5})?$|^localhost:\d{1,5}$|^[A-Za-z0-9-]+:\d{1,5}$/;
const REPO_COMPONENT = /^[a-z0-9]+([._-][a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

/** checkImage returns why ref is not an accepted image reference, or undefined. */
export function checkImage(ref: string): string | undefined {
  if (ref.startsWith('oci-archive:')) {
    const path = ref.slice('oci-archive:'.length);
    return path.startsWith('/') && !path.includes('\0') ? undefined : `"${ref}": oci-archive needs an absolute path, e.g. oci-archive:/images/busybox.tar`;
  }
  if (ref.startsWith('docker-archive:')) {
    const path = ref.slice('docker-archive:'.length);
    return path.startsWith('/') && !path.includes('\0') ? undefined : `"${ref}": docker-archive needs an absolute path, e.g. docker-archive:/images/busybox.tar`;
  }
  if (ref.startsWith('oci:')) {
    const rest = ref.slice('oci:'.length);
    const colon = rest.lastIndexOf(':');
    const dir = colon > 0 ? rest.slice(0, colon) : rest;
    const tag = colon > 0 ? rest.slice(colon + 1) : undefined;
    if (!dir.startsWith('/')) return `"${ref}": oci needs an absolute layout directory, e.g. oci:/images/busybox:1.36`;
    if (tag !== undefined && !TAG.test(tag)) return `"${ref}": invalid tag "${tag}"`;
    return undefined;
  }
  const slash = ref.indexOf('/');
  if (slash < 0) return `"${ref}": a registry image needs a host, e.g. registry.local:5000/library/busybox:1.36 (or use oci-archive:/path.tar)`;
  const host = ref.slice(0, slash);
  if (!HOST.test(host)) return `"${ref}": invalid registry host "${host}"`;
  let rest = ref.slice(slash + 1);
  const at = rest.indexOf('@');
  if (at >= 0) {
    if (!DIGEST.test(rest.slice(at + 1))) return `"${ref}": digest must be sha256:<64 hex>`;
    rest = rest.slice(0, at);
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon >= 0) {
      if (!TAG.test(rest.slice(colon + 1))) return `"${ref}": invalid tag "${rest.slice(colon + 1)}"`;
      rest = rest.slice(0, colon);
    }
  }
  const bad = rest.split('/').find((c) => !REPO_COMPONENT.test(c));
  return bad === undefined ? undefined : `"${ref}": invalid repository name component "${bad}"`;
}

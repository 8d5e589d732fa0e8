/** Name rules for stored objects: DNS labels, so names work as hostnames and key segments. */

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** MAX_NAME_LENGTH is the DNS label limit for namespaces, nodes and tasks. */
export const MAX_NAME_LENGTH = 63;

/** MAX_SERVICE_NAME_LENGTH leaves room for the "-xxxxx" task suffix and future growth. */
export const MAX_SERVICE_NAME_LENGTH = 40;

/** checkDnsLabel returns why s is not a DNS label of at most max characters, or undefined. */
export function checkDnsLabel(s: string, max = MAX_NAME_LENGTH): string | undefined {
  if (s.length === 0) return 'must not be empty';
  if (s.length > max) return `must be at most ${max} characters (got ${s.length})`;
  if (!DNS_LABEL.test(s)) return `"${s}" must be a DNS label: lowercase letters, digits and "-", starting and ending with a letter or digit`;
  return undefined;
}

const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

/** checkLabel returns why a label key or value is malformed, or undefined. */
export function checkLabel(key: string, value: string): string | undefined {
  if (key.length > 253 || !LABEL_KEY.test(key)) return `invalid label key "${key}"`;
  if (value.length > 63 || !LABEL_VALUE.test(value)) return `invalid value "${value}" for label "${key}"`;
  return undefined;
}

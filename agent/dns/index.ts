/** The node resolver for containers: codec, answers, server. */
export { DnsServer, type DnsServerOptions } from './server.js';
export { DNS_PORT, parseUpstream, type Upstream } from './upstream.js';
export { CLUSTER_DOMAIN } from './answer.js';
export { namespaceIndex } from './sources.js';

/** Pulling images from OCI distribution registries. */
export { RegistryPuller, MAX_CONCURRENT_LAYERS, type RegistryPullerOptions, type FetchedManifest } from './source.js';
export { RegistryTransport, type RegistryHost, type RegistryRequest, type TransportOptions } from './transport.js';
export { ContentStore, type BlobFetcher } from './content-store.js';
export { parseChallenge, TokenCache, basicHeader, type Challenge, type Credentials, type CredentialsHook } from './auth.js';
export { hostPlatform, selectPlatform, platformString, MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, MEDIA_TYPES, type Platform } from './manifest.js';
export { withRetries, RetryableError, backoffMs, PULL_ATTEMPTS, BACKOFF_BASE_MS, BACKOFF_MAX_MS } from './retry.js';

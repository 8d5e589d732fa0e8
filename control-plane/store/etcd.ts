/**
 * The etcd client, made in one place. Only control-plane/store/ holds an etcd3 client; the rest
 * of the control plane reaches etcd through Store operations (test/unit/etcd-boundary.test.ts).
 */
import { noop } from 'cockatiel';
import { Etcd3 } from 'etcd3';
import { ETCD_CLIENT_CHANNEL_OPTIONS } from '../../common/grpc-limits.js';

/** ETCD_DIAL_TIMEOUT_MS bounds one connection attempt to an etcd member. */
export const ETCD_DIAL_TIMEOUT_MS = 5_000;

/** connectEtcd makes the control plane's client for endpoints (lazy: nothing is dialled until used). */
export function connectEtcd(endpoints: readonly string[]): Etcd3 {
  // etcd3's default per-host circuit breaker opens for 5 s after 3 failures; with one endpoint
  // there is no other host to fail over to, so it only turns a blip into a 5 s outage.
  return new Etcd3({
    hosts: [...endpoints],
    dialTimeout: ETCD_DIAL_TIMEOUT_MS,
    grpcOptions: ETCD_CLIENT_CHANNEL_OPTIONS,
    ...(endpoints.length === 1 ? { faultHandling: { host: () => noop } } : {}),
  });
}

/**
 * etcdAnswers tells whether etcd at endpoint serves a read within timeoutMs. A fresh client per
 * probe: etcd3's circuit breaker would otherwise hold a client "open" for seconds after the
 * refused connections of start-up.
 */
export async function etcdAnswers(endpoint: string, timeoutMs: number): Promise<boolean> {
  const probe = new Etcd3({ hosts: endpoint, dialTimeout: timeoutMs });
  try {
    await probe.get('health').options({ deadline: Date.now() + timeoutMs }).string();
    return true;
  } catch {
    return false;
  } finally {
    probe.close();
  }
}

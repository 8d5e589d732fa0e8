/**
 * The etcd client, made in one place. Only control-plane/store/ holds an etcd3 client; the rest
 * of the control plane reaches etcd through Store operations (test/unit/etcd-boundary.test.ts).
 */
import { noop } from 'cockatiel';
import { Etcd3 } from 'etcd3';
import { WatchManager } from 'etcd3/lib/watch.js';
import { ETCD_CLIENT_CHANNEL_OPTIONS } from '../../common/grpc-limits.js';

/** WatchResponseHandler is the part of etcd3's WatchManager that dispatches one response. */
interface WatchResponseHandler {
  watchers: { id: string | null }[];
  handleResponse(res: { watch_id: string }): void;
}

/**
 * toleratesLateWatchResponses makes etcd3 drop a watch response for a watcher it no longer has
 * instead of throwing from its stream handler, which ends the process: etcd may still send
 * events for a watch the client has just cancelled (a cache relisting after a compaction does
 * exactly that). Found by the chaos suite (scenario control-plane, seed 1002).
 */
export function toleratesLateWatchResponses(proto: WatchResponseHandler): void {
  const dispatch = proto.handleResponse;
  proto.handleResponse = function handleResponse(this: WatchResponseHandler, res) {
    if (!this.watchers.some((w) => w.id === res.watch_id)) return;
    dispatch.call(this, res);
  };
}

toleratesLateWatchResponses(WatchManager.prototype as unknown as WatchResponseHandler);

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

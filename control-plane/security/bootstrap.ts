/**
 * The first admin credential. On the cluster's first start (no bootstrap token in etcd yet) the
 * control plane makes an admin token and writes it with the server URL and CA certificate to an
 * admin berth config file (0600), as kubeadm writes admin.conf. Later starts leave it alone.
 */
import type { Logger } from '../../common/log.js';
// The CLI owns the config file's format; the control plane writes the first one with its writer.
import { writeConfig } from '../cli/config.js';
import type { ClusterCa } from './pki.js';
import type { Tokens } from './tokens.js';

/** BOOTSTRAP_CREATOR marks the token made at the first start. */
export const BOOTSTRAP_CREATOR = 'bootstrap';

/** bootstrapAdmin makes the admin token and config file once per cluster. */
export async function bootstrapAdmin(o: { tokens: Tokens; ca: ClusterCa; server: string; path: string; log: Logger }): Promise<void> {
  // The id follows from the CA, so replicas starting together race on one create: one wins.
  const made = await o.tokens.createWithId(o.ca.sha256.slice(0, 12), { role: 'admin', displayName: 'cluster-admin', createdBy: BOOTSTRAP_CREATOR, description: 'made at the first start of the cluster' }, o.ca.sha256);
  if (!made) return;
  const { token } = made;
  writeConfig(o.path, { apiVersion: 'berth/v1', kind: 'Config', server: o.server, certificateAuthority: o.ca.certificatePem, token });
  o.log.info('wrote the admin config file (keep it safe: it holds an admin token)', { path: o.path });
}

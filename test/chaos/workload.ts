/**
 * The workload: a loop that creates, scales, updates (a new template: rolling update) and deletes
 * services through the real CLI with the admin config, against a replica drawn from the seed and
 * the other one on failure, as a client with two addresses would. Every write is recorded in a
 * model of what the cluster must hold: an acknowledged write replaces the service's possible
 * states, an unacknowledged one (timeout, 5xx) adds to them, so the final comparison accepts
 * exactly the states the acknowledgements allow.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import type { Service } from '../../control-plane/objects/types.js';
import { REPO_ROOT, cliEnv } from '../support/cluster.js';
import { SEED_ARCHIVE } from '../support/images.js';
import { STOPS_ON_TERM } from '../support/network.js';
import type { Rng } from './random.js';
import type { NewViolation } from './violations.js';

/** CLI_TIMEOUT_MS bounds one CLI call: a SIGSTOPped replica accepts connections and never answers. */
export const CLI_TIMEOUT_MS = 12_000;
/** MAX_SERVICES caps the services alive at once. */
const MAX_SERVICES = 4;
/** CPU_BUDGET_SHARE keeps the desired cpu (surge included) under this share of the cluster, so the desired state always fits. */
const CPU_BUDGET_SHARE = 0.6;

/** ServiceState is one possible state of a workload service ("absent" is present: false). */
export interface ServiceState {
  present: boolean;
  replicas: number;
  gen: number;
  cpu: number;
  maxSurge: number;
  maxUnavailable: number;
}

/** OpKind is what the workload does. */
export type OpKind = 'create' | 'scale' | 'update' | 'delete';

/** Outcome of one operation: acknowledged, refused (certainly not applied) or unknown. */
export type Outcome = 'ok' | 'failed' | 'unknown';

/** OpRecord is one operation for the report. */
export interface OpRecord {
  kind: OpKind;
  service: string;
  outcome: Outcome;
  atS: number;
  detail: string;
}

function sameState(a: ServiceState, b: ServiceState): boolean {
  return a.present === b.present && (!a.present || (a.replicas === b.replicas && a.gen === b.gen && a.cpu === b.cpu && a.maxSurge === b.maxSurge && a.maxUnavailable === b.maxUnavailable));
}

/** manifest is the service document the CLI applies for state s. */
export function manifest(name: string, runTag: string, s: ServiceState): string {
  return JSON.stringify({
    kind: 'Service',
    metadata: { name, labels: { chaos: runTag } },
    spec: {
      replicas: s.replicas,
      template: { image: `oci-archive:${SEED_ARCHIVE}`, command: STOPS_ON_TERM, env: { CHAOS_GEN: String(s.gen) }, resources: { cpu: s.cpu, memory: '16Mi', pids: 32 } },
      update: { maxSurge: s.maxSurge, maxUnavailable: s.maxUnavailable },
    },
  });
}

/** stateOf reads a served Service back into a ServiceState. */
export function stateOf(svc: Service | undefined): ServiceState {
  if (!svc) return { present: false, replicas: 0, gen: 0, cpu: 0, maxSurge: 0, maxUnavailable: 0 };
  return {
    present: true, replicas: svc.spec.replicas, gen: Number(svc.spec.template.env?.CHAOS_GEN ?? -1), cpu: svc.spec.template.resources?.cpu ?? 0,
    maxSurge: svc.spec.update?.maxSurge ?? -1, maxUnavailable: svc.spec.update?.maxUnavailable ?? -1,
  };
}

/** cli runs the berth CLI against server (admin config of the cluster); outcome by exit code and message. */
function cli(server: string, args: string[], input?: string): Promise<{ outcome: Outcome; text: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [join(REPO_ROOT, 'dist', 'control-plane', 'cli', 'main.js'), '--server', server, ...args],
      { encoding: 'utf8', timeout: CLI_TIMEOUT_MS, env: cliEnv(server), killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
        const text = `${stdout}${stderr}`.trim().split('\n').slice(-2).join(' | ');
        if (!err) return resolve({ outcome: 'ok', text });
        if (err.killed) return resolve({ outcome: 'unknown', text: `no answer within ${CLI_TIMEOUT_MS} ms` });
        // Refused before anything was sent, or refused by the server's validation: not applied.
        const refused = /ECONNREFUSED|EHOSTUNREACH|BERTH_ERR_(VALIDATION|NOT_FOUND|ALREADY_EXISTS|CONFLICT|FORBIDDEN|UNAUTHENTICATED)|not found|already exists|changed concurrently/i.test(text);
        resolve({ outcome: refused ? 'failed' : 'unknown', text });
      });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Workload is the loop and its model. */
export class Workload {
  private readonly model = new Map<string, ServiceState[]>();
  private readonly ops: OpRecord[] = [];
  private running: Promise<void> | undefined;
  private stopping = false;
  private wake: (() => void) | undefined;
  private created = 0;

  constructor(private readonly o: {
    servers: () => string[];
    rng: Rng;
    runTag: string;
    clusterCpu: number;
    startedAtMs: number;
    log: (line: string) => void;
  }) {}

  /** operations lists every operation so far. */
  get operations(): readonly OpRecord[] {
    return this.ops;
  }

  /** names are the services the workload made (present or not). */
  get names(): string[] {
    return [...this.model.keys()];
  }

  /** start runs the loop in the background until stop(). */
  start(): void {
    this.running ??= this.loop();
  }

  /** stop ends the loop after the operation in flight. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.running;
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      await this.step().catch((err: unknown) => this.o.log(`workload: step failed: ${(err as Error).message}`));
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.o.rng.between(1_000, 3_000));
        this.wake = () => { clearTimeout(t); resolve(); };
      });
    }
  }

  // cpuCost is the most cpu a set of possible states may hold (replicas + surge during a rollout).
  private cpuCost(states: ServiceState[]): number {
    return Math.max(0, ...states.filter((s) => s.present).map((s) => (s.replicas + s.maxSurge) * s.cpu));
  }

  private budgetAllows(name: string, next: ServiceState): boolean {
    let total = this.cpuCost([next]);
    for (const [n, states] of this.model) if (n !== name) total += this.cpuCost(states);
    return total <= CPU_BUDGET_SHARE * this.o.clusterCpu;
  }

  private async step(): Promise<void> {
    const rng = this.o.rng;
    const certain = [...this.model].filter(([, st]) => st.length === 1 && st[0]!.present).map(([n, st]) => [n, st[0]!] as const);
    const maybeAlive = [...this.model.values()].filter((st) => st.some((s) => s.present)).length;
    const weights: [OpKind, number][] = [['create', maybeAlive < MAX_SERVICES ? 3 : 0], ['scale', certain.length ? 4 : 0],
      ['update', certain.length ? 3 : 0], ['delete', certain.length > 1 ? 1 : 0]];
    const kind = rng.weighted(weights.filter(([, w]) => w > 0));
    if (kind === 'create') {
      const name = `${this.o.runTag}-${++this.created}`;
      const s: ServiceState = { present: true, replicas: rng.int(1, 4), gen: 1, cpu: rng.pick([0.1, 0.2, 0.25]), maxSurge: rng.pick([1, 2]), maxUnavailable: rng.pick([0, 0, 1]) };
      if (!this.budgetAllows(name, s)) return;
      this.model.set(name, [stateOf(undefined)]);
      await this.write('create', name, s, ['apply', '-f', '-'], manifest(name, this.o.runTag, s));
      return;
    }
    const [name, cur] = rng.pick(certain);
    if (kind === 'delete') {
      await this.write('delete', name, stateOf(undefined), ['delete', 'service', name]);
    } else if (kind === 'scale') {
      const s = { ...cur, replicas: rng.pick([0, 1, 2, 3, 4, 5].filter((r) => r !== cur.replicas)) };
      if (this.budgetAllows(name, s)) await this.write('scale', name, s, ['scale', name, String(s.replicas)]);
    } else {
      const s = { ...cur, gen: cur.gen + 1, cpu: rng.chance(0.3) ? rng.pick([0.1, 0.2, 0.25]) : cur.cpu };
      if (this.budgetAllows(name, s)) await this.write('update', name, s, ['apply', '-f', '-'], manifest(name, this.o.runTag, s));
    }
  }

  // write performs one operation on a seeded replica, then once more on the other if the first
  // was refused at the door or unanswered; all three ops are idempotent, so a repeat is safe.
  private async write(kind: OpKind, name: string, next: ServiceState, args: string[], input?: string): Promise<void> {
    const servers = this.o.servers();
    const first = this.o.rng.int(0, servers.length - 1);
    const order = [servers[first]!, ...servers.filter((_, i) => i !== first)].slice(0, 2);
    let unknown = false;
    let outcome: Outcome = 'failed';
    const details: string[] = [];
    for (const server of order) {
      const r = await cli(server, args, input);
      // A repeated delete that finds nothing means the first one (or an earlier unknown one) applied.
      const done = r.outcome === 'ok' || (kind === 'delete' && /not found/i.test(r.text));
      details.push(`${new URL(server).port}: ${done ? 'ok' : r.outcome} ${r.outcome === 'ok' ? '' : r.text}`.trim());
      if (done) { outcome = 'ok'; break; }
      if (r.outcome === 'unknown') unknown = true;
      // A refusal by the server's rules is final; only an unreachable or silent server is worth a retry.
      if (r.outcome === 'failed' && !/ECONNREFUSED|EHOSTUNREACH/.test(r.text)) break;
    }
    if (outcome !== 'ok' && unknown) outcome = 'unknown';
    const states = this.model.get(name)!;
    if (outcome === 'ok') this.model.set(name, [next]);
    else if (outcome === 'unknown' && !states.some((s) => sameState(s, next))) this.model.set(name, [...states, next]);
    const rec: OpRecord = { kind, service: name, outcome, atS: (Date.now() - this.o.startedAtMs) / 1000, detail: details.join('; ') };
    this.ops.push(rec);
    const spec = kind === 'delete' ? '' : ` replicas=${next.replicas} gen=${next.gen} cpu=${next.cpu} maxSurge=${next.maxSurge} maxUnavailable=${next.maxUnavailable}`;
    this.o.log(`op ${kind} ${name}${spec}: ${outcome} (${rec.detail})`);
  }

  /** deleteAll deletes every service the workload may have made (clean-up after a run); returns those it could not. */
  async deleteAll(): Promise<string[]> {
    const failed: string[] = [];
    for (const [name, states] of this.model) {
      if (!states.some((s) => s.present)) continue;
      let done = false;
      for (const server of [...this.o.servers(), ...this.o.servers()]) {
        const r = await cli(server, ['delete', 'service', name]);
        if (r.outcome === 'ok' || /not found/i.test(r.text)) { done = true; break; }
      }
      if (done) this.model.set(name, [stateOf(undefined)]);
      else failed.push(name);
    }
    return failed;
  }

  /**
   * checkAcknowledged compares what the API serves with the model: every workload service must be
   * in one of its possible states, and no other service of this run may exist.
   */
  checkAcknowledged(served: readonly Service[]): NewViolation[] {
    const out: NewViolation[] = [];
    const byName = new Map(served.map((s) => [s.metadata.name, s]));
    for (const [name, states] of this.model) {
      const actual = stateOf(byName.get(name));
      if (!states.some((s) => sameState(s, actual))) {
        out.push({ invariant: 'acked-write-lost', source: 'api', objects: [`service default/${name}`],
          message: `serves ${JSON.stringify(actual)}; the acknowledged writes allow only ${JSON.stringify(states)}` });
      }
    }
    for (const s of served) {
      if (s.metadata.labels?.chaos === this.o.runTag && !this.model.has(s.metadata.name)) {
        out.push({ invariant: 'acked-write-lost', source: 'api', objects: [`service default/${s.metadata.name}`], message: 'exists though the workload never wrote it' });
      }
    }
    return out;
  }
}

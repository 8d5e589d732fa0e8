/**
 * The three checks of one container as one explicit machine (Kubernetes semantics):
 * - startup runs alone until it passes once; meanwhile neither health nor readiness runs and the
 *   container is not ready. Failing past its threshold restarts the container. Once passed, it
 *   never runs again for that container.
 * - health (liveness) then runs; failing past its threshold restarts the container.
 * - readiness runs beside it and decides whether the container is ready (DNS, routing mesh,
 *   rollouts); it never restarts anything.
 * A template with health but no readiness keeps the meaning health had before readiness
 * existed: health passing is what makes the container ready. Pure: the loops that run the probes
 * (index.ts) and the reconciler's ContainerHealth fold their results through these functions.
 */
import { initialHealth, nextHealth, nextReadiness, probeSettings, type HealthCheck, type HealthState, type Probe, type ProbeSettings } from './probe-state.js';

/** ProbeKind names a check by its role: startup, liveness (the template's `health`) or readiness. */
export type ProbeKind = 'startup' | 'liveness' | 'readiness';

/** RestartingKind is a check whose failure past its threshold restarts the container. */
export type RestartingKind = Exclude<ProbeKind, 'readiness'>;

/** ContainerChecks are a container's checks by role; an absent one, or one without a probe kind, does not run. */
export interface ContainerChecks {
  startup?: HealthCheck;
  liveness?: HealthCheck;
  readiness?: HealthCheck;
}

/** ProbeSetState is the machine's state for one container. */
export interface ProbeSetState {
  /** started: the startup check has passed (or there is none). */
  started: boolean;
  /** restart names the check that failed past its threshold; the container must be restarted and nothing runs any more. */
  restart?: RestartingKind;
  checks: Record<ProbeKind, HealthState>;
}

/** ProbeVerdict is what the state means for the task. */
export interface ProbeVerdict {
  started: boolean;
  ready: boolean;
  restart?: RestartingKind;
}

/** Fold is how one result moves one check's state. */
export type Fold = (s: HealthState, ok: boolean, t: Pick<ProbeSettings, 'failureThreshold' | 'successThreshold'>) => HealthState;

/** runs tells whether a check is there to run: present and with a probe kind. */
export function runs(check: HealthCheck | undefined): check is HealthCheck & { probe: Probe } {
  return check?.probe !== undefined;
}

/** hasChecks tells whether any of a container's checks runs; without one the container is started and ready once running. */
export function hasChecks(c: ContainerChecks): boolean {
  return runs(c.startup) || runs(c.liveness) || runs(c.readiness);
}

/** initialProbeSet is a freshly started container: started only if it has no startup check, ready not yet. */
export function initialProbeSet(c: ContainerChecks): ProbeSetState {
  return { started: !runs(c.startup), checks: { startup: initialHealth, liveness: initialHealth, readiness: initialHealth } };
}

/** activeProbes lists the checks that run in state s: startup alone until it passes, then liveness and readiness; none once a restart is due. */
export function activeProbes(c: ContainerChecks, s: ProbeSetState): ProbeKind[] {
  if (s.restart) return [];
  if (!s.started) return ['startup'];
  return (['liveness', 'readiness'] as const).filter((k) => runs(c[k]));
}

/** foldFor is the fold a check of that kind uses: readiness never turns unhealthy, startup and liveness do. */
export function foldFor(kind: ProbeKind): Fold {
  return kind === 'readiness' ? nextReadiness : nextHealth;
}

/**
 * withCheckState records one check's new state in the set: startup turning ready starts the
 * container, startup or liveness turning unhealthy asks for a restart. A check that is not
 * active in s is ignored (a late result from a loop that has just been stopped).
 */
export function withCheckState(c: ContainerChecks, s: ProbeSetState, kind: ProbeKind, h: HealthState): ProbeSetState {
  if (!activeProbes(c, s).includes(kind)) return s;
  const next: ProbeSetState = { ...s, checks: { ...s.checks, [kind]: h } };
  if (kind === 'startup' && h.ready) next.started = true;
  if (h.unhealthy && kind !== 'readiness') next.restart = kind;
  return next;
}

/** nextProbeSet folds one probe result of check `kind` into the set, as the running loops do. */
export function nextProbeSet(c: ContainerChecks, s: ProbeSetState, kind: ProbeKind, ok: boolean): ProbeSetState {
  const check = c[kind];
  if (!runs(check) || !activeProbes(c, s).includes(kind)) return s;
  return withCheckState(c, s, kind, foldFor(kind)(s.checks[kind], ok, probeSettings(check)));
}

/**
 * verdictOf is what the state means: ready needs started and no pending restart, then the
 * readiness check decides; without one the health check does (the meaning templates had before
 * readiness existed); with neither, started is ready.
 */
export function verdictOf(c: ContainerChecks, s: ProbeSetState): ProbeVerdict {
  const decides = runs(c.readiness) ? s.checks.readiness : runs(c.liveness) ? s.checks.liveness : undefined;
  const ready = s.restart === undefined && s.started && (decides ? decides.ready : true);
  return { started: s.started, ready, ...(s.restart ? { restart: s.restart } : {}) };
}

/**
 * Placement constraints as users write them: `node.name == n1`, `node.labels.zone != a`,
 * `node.labels.zone in (a, b)`, `node.labels.disk not in (hdd)`, `node.labels.gpu exists`,
 * `node.labels.gpu not exists`. Parsed once on admission
 * and again (cheaply) by the scheduler.
 */

/** Constraint is one parsed placement rule over a node attribute. */
export interface Constraint {
  /** attribute is "node.name" or "node.labels.<key>". */
  attribute: string;
  op: '==' | '!=' | 'in' | 'notin' | 'exists' | 'notexists';
  values: string[];
}

const ATTRIBUTE = /^node\.(name|labels\.[A-Za-z0-9][-A-Za-z0-9_./]*)$/;
const VALUE = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** parseConstraint parses one rule or says why it cannot. */
export function parseConstraint(s: string): { ok: true; constraint: Constraint } | { ok: false; message: string } {
  const ex = /^\s*(\S+)\s+(not\s+)?exists\s*$/.exec(s);
  if (ex) {
    const attribute = ex[1]!;
    if (!ATTRIBUTE.test(attribute)) return { ok: false, message: `unknown attribute "${attribute}" (use node.name or node.labels.KEY)` };
    return { ok: true, constraint: { attribute, op: ex[2] ? 'notexists' : 'exists', values: [] } };
  }
  const m = /^\s*(\S+)\s*(==|!=|\s+not\s+in\s+|\s+in\s+)\s*(.+?)\s*$/.exec(s);
  if (!m) return { ok: false, message: `cannot parse "${s}" (expected ATTRIBUTE ==|!=|in|not in VALUE, or ATTRIBUTE [not] exists)` };
  const attribute = m[1]!;
  if (!ATTRIBUTE.test(attribute)) return { ok: false, message: `unknown attribute "${attribute}" (use node.name or node.labels.KEY)` };
  const rawOp = m[2]!.trim().replace(/\s+/, ' ');
  let values: string[];
  if (rawOp === 'in' || rawOp === 'not in') {
    const list = /^\((.*)\)$/.exec(m[3]!);
    if (!list) return { ok: false, message: `"${s}": ${rawOp} needs a list like (a, b)` };
    values = list[1]!.split(',').map((v) => v.trim());
  } else {
    values = [m[3]!];
  }
  const bad = values.find((v) => !VALUE.test(v));
  if (bad !== undefined) return { ok: false, message: `"${s}": invalid value "${bad}"` };
  const op = rawOp === 'not in' ? 'notin' : (rawOp as Constraint['op']);
  return { ok: true, constraint: { attribute, op, values } };
}

/** ParsedConstraints is a whole rule list parsed, or the first rule that does not parse. */
export type ParsedConstraints = { ok: true; constraints: Constraint[] } | { ok: false; message: string };

/**
 * parseConstraints parses every rule. Admission refuses a list that does not parse; one found in
 * storage anyway must place nothing rather than drop the rule and widen placement (fail closed).
 */
export function parseConstraints(raw: readonly string[] | undefined): ParsedConstraints {
  const constraints: Constraint[] = [];
  for (const c of raw ?? []) {
    const p = parseConstraint(c);
    if (!p.ok) return { ok: false, message: `invalid placement constraint: ${p.message}` };
    constraints.push(p.constraint);
  }
  return { ok: true, constraints };
}

/** attributeOf reads a constraint or spread attribute from a node; undefined when the label is absent. */
export function attributeOf(attribute: string, node: { name: string; labels: Record<string, string> }): string | undefined {
  if (attribute === 'node.name') return node.name;
  return node.labels[attribute.slice('node.labels.'.length)];
}

/** matches tells whether a node satisfies the constraint; an absent label only satisfies != and not in. */
export function matches(c: Constraint, node: { name: string; labels: Record<string, string> }): boolean {
  const v = attributeOf(c.attribute, node);
  switch (c.op) {
    case '==': return v === c.values[0];
    case '!=': return v !== c.values[0];
    case 'in': return v !== undefined && c.values.includes(v);
    case 'notin': return v === undefined || !c.values.includes(v);
    case 'exists': return v !== undefined;
    case 'notexists': return v === undefined;
  }
}

/** isSpreadAttribute tells whether s names an attribute spread can use. */
export function isSpreadAttribute(s: string): boolean {
  return ATTRIBUTE.test(s);
}

/**
 * Path parameters are checked once, for every route, before any hook or handler reads the
 * store. A parameter arrives URL-decoded and becomes a segment of an etcd key, so a service
 * named `db%2Frevisions%2F1` would otherwise address the revision object
 * `services/<ns>/db/revisions/1`. Each parameter gets the naming rule of the collection it names
 * (the URL segment before it); a parameter under a collection this table does not know gets a
 * DNS label of MAX_NAME_LENGTH, so a new route is covered without opting in. The check runs in
 * the first onRequest hook (installed by installErrorHandlers, before every route and hook), so
 * the `?watch=1` interception, which reads the namespace straight from the URL, is covered too.
 */
import type { FieldError } from '../errors.js';
import { checkDnsLabel, MAX_NAME_LENGTH, MAX_SERVICE_NAME_LENGTH } from '../objects/names.js';

/** PathParamRule is how one kind of path parameter is named and checked. */
export interface PathParamRule {
  /** what names the parameter's meaning in messages ("service name"). */
  what: string;
  max: number;
}

/** PATH_PARAM_RULES maps the collection segment before a parameter onto its naming rule. */
export const PATH_PARAM_RULES: Readonly<Record<string, PathParamRule>> = {
  namespaces: { what: 'namespace', max: MAX_NAME_LENGTH },
  services: { what: 'service name', max: MAX_SERVICE_NAME_LENGTH },
  tasks: { what: 'task name', max: MAX_NAME_LENGTH },
  nodes: { what: 'node name', max: MAX_NAME_LENGTH },
  events: { what: 'event name', max: MAX_NAME_LENGTH },
  tokens: { what: 'token id', max: MAX_NAME_LENGTH },
};

const DEFAULT_RULE: PathParamRule = { what: 'name', max: MAX_NAME_LENGTH };

/** ruleFor finds the rule of parameter `param` in route pattern `route` (e.g. "/v1/nodes/:name"). */
export function ruleFor(route: string, param: string): PathParamRule {
  const segments = route.split('/');
  const i = segments.indexOf(`:${param}`);
  return (i > 0 ? PATH_PARAM_RULES[segments[i - 1]!] : undefined) ?? DEFAULT_RULE;
}

/** checkPathParams returns the first parameter of route that breaks its naming rule, or undefined (pure). */
export function checkPathParams(route: string, params: Readonly<Record<string, unknown>>): FieldError | undefined {
  for (const [param, value] of Object.entries(params)) {
    const rule = ruleFor(route, param);
    const why = typeof value === 'string' ? checkDnsLabel(value, rule.max) : 'must be a string';
    if (why !== undefined) {
      return { code: 'BERTH_ERR_INVALID_NAME', field: param, message: `path parameter "${param}" (${rule.what}): ${why}` };
    }
  }
  return undefined;
}

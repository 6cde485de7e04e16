/**
 * The HTTP routes every rule table has: list, read, create or replace (PUT), enable/disable (PATCH), delete. Each rule
 * router (api/rules-routes.ts, api/inbound-rule-routes.ts) builds them here and adds what is its own (its /test route).
 */
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { RuleIssue } from '../domain/bounce-rules/rule-validation';
import type { RuleChangeAudit, RuleSetState } from '../db/rule-table-store';
import { NotFoundError } from './http-errors';
import { auditActor } from './auth/access-control';

/** What the routes need of a rule table store (db/rule-table-store.ts). */
export interface RuleTableRouteStore<Filter> {
  list(filter: Filter): Promise<unknown[]>;
  state(): Promise<RuleSetState>;
  get(id: string): Promise<unknown | null>;
  upsert(input: unknown, opts: { enabled?: boolean; audit?: RuleChangeAudit }): Promise<{ rule: unknown; created: boolean }>;
  setEnabled(id: string, enabled: boolean, audit?: RuleChangeAudit): Promise<unknown | null>;
  delete(id: string, audit?: RuleChangeAudit): Promise<boolean>;
}

export interface RuleTableRoutesOptions<Filter> {
  /** The collection's path, e.g. '/api/inbound-rules'. */
  base: string;
  /** What the rules are called in a 404 ("<noun> <id> does not exist"). */
  noun: string;
  /** What the audit log calls them (its target type and action prefix: 'qualification_rule' → qualification_rule.put). */
  auditTarget: string;
  store: RuleTableRouteStore<Filter>;
  /** The rule id in the URL. */
  idParam: z.ZodType<string>;
  /** The list route's query string, parsed into the store's list filter. */
  listQuery: z.ZodType<Filter>;
  /** The rule set's invalid-rule error (the error middleware answers it 400 with its issues). */
  invalidRule: (ruleId: string, issues: RuleIssue[]) => Error;
  /** Routes of this table only, registered after the list route and before the `/:id` ones. */
  routes?: (router: Router) => void;
}

export const patchBody = z.object({ enabled: z.boolean() }).strict();
/** What a PUT body may carry besides the rule: its own id (must equal the URL's) and the read-only fields of a GET. */
export const putEnvelope = z.object({
  id: z.string().optional(),
  enabled: z.boolean().optional(),
  origin: z.unknown().optional(),
  updatedAt: z.unknown().optional(),
});

class RuleNotFoundError extends NotFoundError {}

export function createRuleTableRouter<Filter>(opts: RuleTableRoutesOptions<Filter>): Router {
  const { base, noun, store } = opts;
  const router = Router();
  const ruleId = (req: Request): string => opts.idParam.parse(req.params.id);
  const notFound = (id: string) => new RuleNotFoundError(`${noun} ${id} does not exist`);
  // Every change is audited in its own transaction, with the key that made it.
  const audit = (res: Response): RuleChangeAudit => ({ actor: auditActor(res), targetType: opts.auditTarget });

  router.get(base, async (req, res) => {
    const filter = opts.listQuery.parse(req.query);
    const [rules, state] = await Promise.all([store.list(filter), store.state()]);
    res.json({ seedVersion: state.version, revision: state.revision, updatedAt: state.updatedAt, rules });
  });

  opts.routes?.(router);

  router.get(`${base}/:id`, async (req, res) => {
    const id = ruleId(req);
    const rule = await store.get(id);
    if (!rule) throw notFound(id);
    res.json(rule);
  });

  router.put(`${base}/:id`, async (req, res) => {
    const id = ruleId(req);
    const body: unknown = req.body;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw opts.invalidRule(id, [{ path: '', message: 'the body must be a JSON object: the rule without its id' }]);
    }
    const envelope = putEnvelope.parse(body);
    if (envelope.id !== undefined && envelope.id !== id) {
      throw opts.invalidRule(id, [{ path: 'id', message: `the body's id "${envelope.id}" differs from the URL's; rules are never renamed` }]);
    }
    const { id: _id, enabled: _enabled, origin: _origin, updatedAt: _updatedAt, ...rule } = body as Record<string, unknown>;
    const { rule: stored, created } = await store.upsert({ id, ...rule }, { enabled: envelope.enabled, audit: audit(res) });
    res.status(created ? 201 : 200).json(stored);
  });

  router.patch(`${base}/:id`, async (req, res) => {
    const id = ruleId(req);
    const body = patchBody.parse(req.body ?? {});
    const rule = await store.setEnabled(id, body.enabled, audit(res));
    if (!rule) throw notFound(id);
    res.json(rule);
  });

  router.delete(`${base}/:id`, async (req, res) => {
    const id = ruleId(req);
    if (!(await store.delete(id, audit(res)))) throw notFound(id);
    res.status(204).end();
  });

  return router;
}

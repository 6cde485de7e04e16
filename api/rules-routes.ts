/** HTTP API of the synchronous qualification rules: list, read, create or replace, enable/disable, delete, and try a reply. */
import { Router, type Request } from 'express';
import { z } from 'zod';
import { qualifySmtpReply } from '../domain/bounce-rules/qualify-smtp-reply';
import { parseSmtpReply } from '../domain/smtp-reply';
import type { QualificationRuleStore } from '../db/qualification-rule-store';
import { InvalidQualificationRuleError } from '../domain/bounce-rules/rule-validation';
import { qualificationRuleIdSchema } from '../domain/bounce-rules/qualification-rule';
import { NotFoundError } from './http-errors';

export interface RulesRouterDependencies {
  store: QualificationRuleStore;
}

const BASE = '/api/qualification-rules';

const idParam = qualificationRuleIdSchema.max(200);
const listQuery = z.object({ provider: z.string().min(1).optional() });
const patchBody = z.object({ enabled: z.boolean() }).strict();
const testBody = z
  .object({
    reply: z.string().min(1).max(10_000),
    domain: z.string().min(1).max(253).optional(),
  })
  .strict();
/** What a PUT body may carry besides the rule: its own id (must equal the URL's) and the read-only fields of a GET. */
const putEnvelope = z.object({
  id: z.string().optional(),
  enabled: z.boolean().optional(),
  origin: z.unknown().optional(),
  updatedAt: z.unknown().optional(),
});

class RuleNotFoundError extends NotFoundError {}

function ruleId(req: Request): string {
  return idParam.parse(req.params.id);
}

export function createRulesRouter(deps: RulesRouterDependencies): Router {
  const { store } = deps;
  const router = Router();

  router.get(BASE, async (req, res) => {
    const q = listQuery.parse(req.query);
    const [rules, state] = await Promise.all([store.list({ provider: q.provider }), store.state()]);
    res.json({ seedVersion: state.version, revision: state.revision, updatedAt: state.updatedAt, rules });
  });

  // Qualifies a reply with the rules as stored now (enabled ones), without waiting for the workers' refresh.
  router.post(`${BASE}/test`, async (req, res) => {
    const body = testBody.parse(req.body ?? {});
    const reply = parseSmtpReply(body.reply);
    const rules = await store.loadCompiled();
    const qualification = qualifySmtpReply(reply, rules, body.domain);
    res.json({
      reply: { code: reply.code, enhancedCode: reply.enhancedCode, text: reply.text },
      domain: body.domain ?? null,
      qualification,
      ruleId: qualification.ruleId,
      matched: qualification.ruleId !== 'default',
      rulesEvaluated: rules.length,
    });
  });

  router.get(`${BASE}/:id`, async (req, res) => {
    const id = ruleId(req);
    const rule = await store.get(id);
    if (!rule) throw new RuleNotFoundError(`qualification rule ${id} does not exist`);
    res.json(rule);
  });

  router.put(`${BASE}/:id`, async (req, res) => {
    const id = ruleId(req);
    const body: unknown = req.body;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new InvalidQualificationRuleError(id, [{ path: '', message: 'the body must be a JSON object: the rule without its id' }]);
    }
    const envelope = putEnvelope.parse(body);
    if (envelope.id !== undefined && envelope.id !== id) {
      throw new InvalidQualificationRuleError(id, [{ path: 'id', message: `the body's id "${envelope.id}" differs from the URL's; rules are never renamed` }]);
    }
    const { id: _id, enabled: _enabled, origin: _origin, updatedAt: _updatedAt, ...rule } = body as Record<string, unknown>;
    const { rule: stored, created } = await store.upsert({ id, ...rule }, { enabled: envelope.enabled });
    res.status(created ? 201 : 200).json(stored);
  });

  router.patch(`${BASE}/:id`, async (req, res) => {
    const id = ruleId(req);
    const body = patchBody.parse(req.body ?? {});
    const rule = await store.setEnabled(id, body.enabled);
    if (!rule) throw new RuleNotFoundError(`qualification rule ${id} does not exist`);
    res.json(rule);
  });

  router.delete(`${BASE}/:id`, async (req, res) => {
    const id = ruleId(req);
    if (!(await store.delete(id))) throw new RuleNotFoundError(`qualification rule ${id} does not exist`);
    res.status(204).end();
  });

  return router;
}

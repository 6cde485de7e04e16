/** HTTP API of the synchronous qualification rules: list, read, create or replace, enable/disable, delete, and try a reply. */
import type { Router } from 'express';
import { z } from 'zod';
import { qualifySmtpReply } from '../domain/bounce-rules/qualify-smtp-reply';
import { parseSmtpReply } from '../domain/smtp-reply';
import type { QualificationRuleStore } from '../db/qualification-rule-store';
import { InvalidQualificationRuleError } from '../domain/bounce-rules/rule-validation';
import { qualificationRuleIdSchema, QualificationRuleError } from '../domain/bounce-rules/qualification-rule';
import { ConflictError } from './http-errors';
import { createRuleTableRouter } from './rule-table-routes';

export interface RulesRouterDependencies {
  store: QualificationRuleStore;
}

const BASE = '/api/qualification-rules';

/**
 * Longest reply the test route qualifies. A real multi-line reply is far shorter; this is long enough to show that
 * a rule's cost stays linear in the reply (patterns run on RE2: domain/patterns/safe-pattern.ts).
 */
const MAX_TEST_REPLY = 100_000;

export const testBody = z
  .object({
    reply: z.string().min(1).max(MAX_TEST_REPLY),
    domain: z.string().min(1).max(253).optional(),
  })
  .strict();

export const ruleIdParam = qualificationRuleIdSchema.max(200);
export const listQuery = z.object({ provider: z.string().min(1).optional() });

export function createRulesRouter(deps: RulesRouterDependencies): Router {
  const { store } = deps;
  return createRuleTableRouter({
    base: BASE,
    noun: 'qualification rule',
    auditTarget: 'qualification_rule',
    store,
    idParam: ruleIdParam,
    listQuery,
    invalidRule: (id, issues) => new InvalidQualificationRuleError(id, issues),
    routes: (router) => {
      // Qualifies a reply with the rules as stored now (enabled ones), without waiting for the workers' refresh.
      router.post(`${BASE}/test`, async (req, res) => {
        const body = testBody.parse(req.body ?? {});
        const reply = parseSmtpReply(body.reply);
        const rules = await store.loadCompiled().catch((e: unknown) => {
          // A row the current validation refuses (written before the rules ran on RE2, or around the API): say which.
          if (e instanceof QualificationRuleError) throw new ConflictError(`${e.message}; fix it (PUT) or disable it (PATCH {"enabled": false})`);
          throw e;
        });
        const start = performance.now();
        const qualification = qualifySmtpReply(reply, rules, body.domain);
        // What a worker spends on this reply (patterns run on RE2, linear in the reply), for rule authors to see.
        const evaluationMs = Math.round((performance.now() - start) * 1000) / 1000;
        res.json({
          reply: { code: reply.code, enhancedCode: reply.enhancedCode, text: reply.text },
          domain: body.domain ?? null,
          qualification,
          ruleId: qualification.ruleId,
          matched: qualification.ruleId !== 'default',
          rulesEvaluated: rules.length,
          evaluationMs,
        });
      });
    },
  });
}

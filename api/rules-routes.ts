/** HTTP API of the synchronous qualification rules: list, read, create or replace, enable/disable, delete, and try a reply. */
import type { Router } from 'express';
import { z } from 'zod';
import { qualifySmtpReply } from '../domain/bounce-rules/qualify-smtp-reply';
import { parseSmtpReply } from '../domain/smtp-reply';
import type { QualificationRuleStore } from '../db/qualification-rule-store';
import { InvalidQualificationRuleError } from '../domain/bounce-rules/rule-validation';
import { qualificationRuleIdSchema } from '../domain/bounce-rules/qualification-rule';
import { createRuleTableRouter } from './rule-table-routes';

export interface RulesRouterDependencies {
  store: QualificationRuleStore;
}

const BASE = '/api/qualification-rules';

const testBody = z
  .object({
    reply: z.string().min(1).max(10_000),
    domain: z.string().min(1).max(253).optional(),
  })
  .strict();

export function createRulesRouter(deps: RulesRouterDependencies): Router {
  const { store } = deps;
  return createRuleTableRouter({
    base: BASE,
    noun: 'qualification rule',
    store,
    idParam: qualificationRuleIdSchema.max(200),
    listQuery: z.object({ provider: z.string().min(1).optional() }),
    invalidRule: (id, issues) => new InvalidQualificationRuleError(id, issues),
    routes: (router) => {
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
    },
  });
}

/** HTTP API of the inbound rules: list, read, create or replace, enable/disable, delete, and classify a message with them. */
import type { Router } from 'express';
import { z } from 'zod';
import type { InboundRuleStore } from '../db/inbound-rule-store';
import type { CompiledRule } from '../domain/bounce-rules/qualification-rule';
import { getDefaultRules } from '../domain/bounce-rules/qualify-smtp-reply';
import { INBOUND_RULE_KINDS, inboundRuleIdSchema, InboundRuleError } from '../domain/bounce-rules/inbound-rule';
import { ConflictError } from './http-errors';
import { InvalidInboundRuleError } from '../domain/bounce-rules/inbound-rule-validation';
import { classifyInboundMessage } from '../mail/inbound/classify';
import { createRuleTableRouter } from './rule-table-routes';

export interface InboundRulesRouterDependencies {
  store: InboundRuleStore;
  /** The SMTP qualification rules the classifier uses for Diagnostic-Codes (default: the seed table). */
  smtpRules?: () => readonly CompiledRule[] | Promise<readonly CompiledRule[]>;
}

const BASE = '/api/inbound-rules';
/** Largest message the test route classifies (a bounce returning a big original is still well under this). */
const MAX_TEST_MESSAGE = 2_000_000;

export const testBody = z.object({ message: z.string().min(1).max(MAX_TEST_MESSAGE) }).strict();

export const ruleIdParam = inboundRuleIdSchema.max(200);
export const listQuery = z.object({ kind: z.enum(INBOUND_RULE_KINDS).optional() });

export function createInboundRulesRouter(deps: InboundRulesRouterDependencies): Router {
  const { store } = deps;
  const smtpRules = deps.smtpRules ?? getDefaultRules;
  return createRuleTableRouter({
    base: BASE,
    noun: 'inbound rule',
    auditTarget: 'inbound_rule',
    store,
    idParam: ruleIdParam,
    listQuery,
    invalidRule: (id, issues) => new InvalidInboundRuleError(id, issues),
    routes: (router) => {
      // Classifies a raw message (`{"message": "<RFC 5322 text>"}`) with the inbound rules as stored now (enabled ones).
      router.post(`${BASE}/test`, async (req, res) => {
        const body = testBody.parse(req.body ?? {});
        const [inbound, smtp] = await Promise.all([
          store.loadCompiled().catch((e: unknown) => {
            // A row the current validation refuses (written before the rules ran on RE2, or around the API): say which.
            if (e instanceof InboundRuleError) throw new ConflictError(`${e.message}; fix it (PUT) or disable it (PATCH {"enabled": false})`);
            throw e;
          }),
          smtpRules(),
        ]);
        const start = performance.now();
        const classification = await classifyInboundMessage(body.message, { inbound, smtp });
        // Parsing the message and running both rule tables on it: what the inbound listener spends on it.
        const evaluationMs = Math.round((performance.now() - start) * 1000) / 1000;
        res.json({ classification, rulesEvaluated: inbound.length, evaluationMs });
      });
    },
  });
}

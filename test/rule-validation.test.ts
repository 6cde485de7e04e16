/** Qualification rule validation as pure functions: what a write, a seed and a stored row must satisfy, without Postgres. */
import { describe, expect, it } from 'vitest';
import seed from '../rules/smtp-qualification-rules.json';
import { QualificationRuleError, type QualificationRule } from '../domain/bounce-rules/qualification-rule';
import {
  compileStoredRule,
  InvalidQualificationRuleError,
  isStorablePriority,
  validateQualificationRule,
  validateSeedRuleSet,
} from '../domain/bounce-rules/rule-validation';

const rule = (overrides: Partial<QualificationRule> = {}): QualificationRule => ({
  id: 'v-rule',
  priority: 5,
  provider: 'test',
  code: '5xx',
  enhancedCode: null,
  pattern: 'no such mailbox',
  domain: null,
  type: 'hard',
  reason: 'user_unknown',
  retryClass: 'none',
  sample: '550 5.1.1 no such mailbox here',
  note: 'test rule',
  ...overrides,
});

function issuesOf(input: unknown) {
  try {
    validateQualificationRule(input);
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidQualificationRuleError);
    return (e as InvalidQualificationRuleError).issues;
  }
  throw new Error('the rule was accepted');
}

describe('validateQualificationRule', () => {
  it('returns a valid rule compiled', () => {
    expect(validateQualificationRule(rule()).patternRegex?.test('No Such Mailbox')).toBe(true);
  });

  it('names the field of a regex that does not compile', () => {
    expect(issuesOf(rule({ pattern: 'user (unknown' }))[0].path).toBe('pattern');
    expect(issuesOf(rule({ domain: '[a-', sampleDomain: 'a.test' }))[0].path).toBe('domain');
  });

  it('refuses a priority the integer column cannot hold', () => {
    expect(issuesOf(rule({ priority: 1.5 }))).toEqual([{ path: 'priority', message: 'must be an integer' }]);
    expect(isStorablePriority(2 ** 31)).toBe(false);
    expect(isStorablePriority(-(2 ** 31) + 1)).toBe(true);
  });

  it('accepts a soft rule that is final for the message', () => {
    expect(validateQualificationRule(rule({ type: 'soft', reason: 'refused', retryClass: 'none' })).result.type).toBe('soft');
  });

  it('refuses a rule that does not qualify its own sample', () => {
    expect(issuesOf(rule({ sample: '550 5.1.1 something else' }))[0].path).toBe('sample');
  });

  it('lists schema issues with their paths, naming the rule', () => {
    const issues = issuesOf({ ...rule(), type: 'ignored', reason: 'error_ignored', retryClass: 'transient' });
    expect(issues.map((i) => i.path)).toContain('retryClass');
    expect(issuesOf({ ...rule(), retryClass: 'transient' }).map((i) => i.path)).toContain('retryClass');
  });
});

describe('validateSeedRuleSet', () => {
  it('accepts the bundled seed', () => {
    expect(validateSeedRuleSet(seed).version).toBe(seed.version);
  });

  it('needs a version and storable priorities', () => {
    expect(() => validateSeedRuleSet([rule()])).toThrow(/needs a version/);
    expect(() => validateSeedRuleSet({ version: 1, rules: [rule({ priority: 0.5 })] })).toThrow(/"v-rule": priority must be an integer/);
  });
});

describe('compileStoredRule', () => {
  it('compiles a valid row and names an invalid one', () => {
    expect(compileStoredRule(rule(), 'v-rule').id).toBe('v-rule');
    const err = (() => {
      try {
        compileStoredRule({ ...rule(), reason: 'nonsense' }, 'v-rule');
      } catch (e) {
        return e as QualificationRuleError;
      }
    })();
    expect(err).toBeInstanceOf(QualificationRuleError);
    expect(err?.message).toMatch(/"v-rule" \(stored\): reason/);
    expect(err?.ruleId).toBe('v-rule');
  });
});

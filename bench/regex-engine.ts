/**
 * What evaluating rule patterns with RE2 (re2js, domain/patterns/safe-pattern.ts) costs next to JavaScript's RegExp:
 * the same rule tables compiled both ways, on the bounce corpus (../shared/bounces, else test/fixtures/bounce-corpus).
 *
 *   npx tsx bench/regex-engine.ts [--rounds 15] [--out bench/results/<date>-regex-engine.json]
 *
 * 1. SMTP qualification: every Diagnostic-Code of the corpus (as the classifier reads it) and every seed rule's sample,
 *    qualified against the whole seed table (qualifySmtpReply), microseconds per reply.
 * 2. Inbound classification of every corpus message (inbound rules + SMTP rules), milliseconds per message.
 * 3. Hostile patterns: the issue's `^(a|aa)+$` and `(x+x+)+y` on 100,000 characters with RE2; RegExp on a few dozen.
 * Rounds alternate engines and the median is printed, so that a load change on the machine hits both.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { execSync } from 'node:child_process';
import { parseDsnFields } from '../mail/inbound/dsn-fields';
import { replyInText } from '../mail/inbound/reply-in-text';
import { classifyInboundMessage } from '../mail/inbound/classify';
import { getDefaultRules, qualifySmtpReply } from '../domain/bounce-rules/qualify-smtp-reply';
import { getDefaultInboundRules } from '../domain/bounce-rules/default-inbound-rules';
import { loadQualificationRules, type CompiledRule } from '../domain/bounce-rules/qualification-rule';
import type { CompiledInboundRule } from '../domain/bounce-rules/inbound-rule';
import { compileSafePattern, type SafePattern } from '../domain/patterns/safe-pattern';
import { parseSmtpReply, type SmtpReply } from '../domain/smtp-reply';
import { RE2JS } from 're2js';
import seed from '../rules/smtp-qualification-rules.json';

const argRounds = process.argv.indexOf('--rounds');
const ROUNDS = argRounds > 0 ? Number(process.argv[argRounds + 1]) : 15;
const argOut = process.argv.indexOf('--out');
const OUT = argOut > 0 ? process.argv[argOut + 1] : join(__dirname, 'results', `${new Date().toISOString().slice(0, 10)}-regex-engine.json`);

const shared = join(__dirname, '..', '..', 'shared', 'bounces');
const CORPUS = existsSync(join(shared, 'manifest.tsv')) ? shared : join(__dirname, '..', 'test', 'fixtures', 'bounce-corpus');

/** The same table with RegExp in place of RE2 (the engine before this change), for comparison only. */
const native = (source: string, flags: string): SafePattern => {
  const re = new RegExp(source, flags);
  return { source, test: (t) => re.test(t) };
};
/** RE2 alone, without the literal prefilter of safe-pattern.ts: what the prefilter saves. */
const plainRe2 = (source: string, multiline: boolean): SafePattern => {
  const re = RE2JS.compile(source, RE2JS.CASE_INSENSITIVE | (multiline ? RE2JS.MULTILINE : 0));
  return { source, test: (t) => re.test(t) };
};
// The first compile of the seed table, as a worker's at start (later ones reuse unchanged patterns: see below).
const firstLoadStart = performance.now();
const re2Smtp = getDefaultRules();
const firstLoadMs = performance.now() - firstLoadStart;
const plainSmtp: CompiledRule[] = re2Smtp.map((r) => ({
  ...r,
  patternRegex: r.pattern === null ? null : plainRe2(r.pattern, false),
  domainRegex: r.domain ? plainRe2(r.domain, false) : null,
}));
const nativeSmtp: CompiledRule[] = re2Smtp.map((r) => ({
  ...r,
  patternRegex: r.pattern === null ? null : native(r.pattern, 'i'),
  domainRegex: r.domain ? native(r.domain, 'i') : null,
}));
const re2Inbound = getDefaultInboundRules();
const nativeInbound: CompiledInboundRule[] = re2Inbound.map((r) => ({
  ...r,
  fromRegex: r.from === null ? null : native(r.from, 'i'),
  subjectRegex: r.subject === null ? null : native(r.subject, 'i'),
  bodyRegex: r.body === null ? null : native(r.body, 'im'),
}));

const files = readdirSync(CORPUS).filter((f) => f.endsWith('.eml')).sort();
const messages = files.map((f) => readFileSync(join(CORPUS, f)));
const replies: { reply: SmtpReply; domain?: string }[] = [];
for (const raw of messages) {
  for (const f of parseDsnFields(raw.toString('utf8')).recipients) {
    if (!f.diagnosticCode) continue;
    const rcpt = f.finalRecipient ?? f.originalRecipient;
    replies.push({ reply: replyInText(f.diagnosticCode, f.status, 5), domain: rcpt ? rcpt.slice(rcpt.lastIndexOf('@') + 1) : undefined });
  }
}
for (const r of re2Smtp) replies.push({ reply: parseSmtpReply(r.sample), domain: r.sampleDomain });

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function qualifyAll(rules: readonly CompiledRule[]): number {
  const t0 = performance.now();
  for (let k = 0; k < 10; k++) for (const r of replies) qualifySmtpReply(r.reply, rules, r.domain);
  return ((performance.now() - t0) * 1000) / (10 * replies.length);
}

async function classifyAll(inbound: readonly CompiledInboundRule[], smtp: readonly CompiledRule[]): Promise<number> {
  const t0 = performance.now();
  for (const m of messages) await classifyInboundMessage(m, { inbound, smtp });
  return (performance.now() - t0) / messages.length;
}

async function main() {
  // Both engines must agree on every reply and message before their costs are compared.
  let disagreements = 0;
  for (const r of replies) {
    const q2 = qualifySmtpReply(r.reply, re2Smtp, r.domain);
    if (q2 !== qualifySmtpReply(r.reply, nativeSmtp, r.domain) || q2 !== qualifySmtpReply(r.reply, plainSmtp, r.domain)) disagreements++;
  }
  for (const m of messages) {
    const a = await classifyInboundMessage(m, { inbound: re2Inbound, smtp: re2Smtp });
    const b = await classifyInboundMessage(m, { inbound: nativeInbound, smtp: nativeSmtp });
    if (JSON.stringify(a.recipients) !== JSON.stringify(b.recipients)) disagreements++;
  }

  const q = { native: [] as number[], re2: [] as number[], plain: [] as number[] };
  const c = { native: [] as number[], re2: [] as number[] };
  qualifyAll(nativeSmtp);
  qualifyAll(re2Smtp);
  qualifyAll(plainSmtp);
  for (let i = 0; i < ROUNDS; i++) {
    q.native.push(qualifyAll(nativeSmtp));
    q.re2.push(qualifyAll(re2Smtp));
    q.plain.push(qualifyAll(plainSmtp));
  }
  await classifyAll(nativeInbound, nativeSmtp);
  await classifyAll(re2Inbound, re2Smtp);
  for (let i = 0; i < Math.max(3, Math.floor(ROUNDS / 3)); i++) {
    c.native.push(await classifyAll(nativeInbound, nativeSmtp));
    c.re2.push(await classifyAll(re2Inbound, re2Smtp));
  }

  // Texts that hold the patterns' required literals, so that the RE2 automaton runs (the prefilter does not skip it).
  const hostile: string[] = [];
  for (const [source, text] of [
    ['^(a|aa)+$', `${'a'.repeat(99_999)}!`],
    ['(x+x+)+y', `y${'x'.repeat(99_999)}`],
  ] as const) {
    const p = compileSafePattern(source);
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      p.test(text);
      times.push(performance.now() - t0);
    }
    hostile.push(`RE2 ${source} on ${text.length} chars: first ${times[0].toFixed(1)} ms, median ${median(times).toFixed(1)} ms`);
  }
  const hostileRules = loadQualificationRules(
    ['^(a|aa)+$', '(x+x+)+y'].map((pattern, i) => ({
      id: `hostile-${i}`,
      priority: i,
      provider: 'bench',
      code: '5xx',
      enhancedCode: null,
      pattern,
      type: 'soft',
      reason: 'refused',
      retryClass: 'none',
      sample: `550 ${i === 0 ? 'aa' : 'xxy'}`,
      note: 'bench',
    })),
  );
  const table = [...hostileRules, ...re2Smtp];
  const longReply = parseSmtpReply(`550 ${'a'.repeat(99_995)}!`);
  const tableTimes: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    qualifySmtpReply(longReply, table);
    tableTimes.push(performance.now() - t0);
  }
  hostile.push(`RE2 both hostile rules + the ${re2Smtp.length} seed rules on a 100,000-char reply: first ${tableTimes[0].toFixed(1)} ms, median ${median(tableTimes).toFixed(1)} ms`);
  const plainTable = [...hostileRules, ...plainSmtp];
  const plainTimes: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    qualifySmtpReply(longReply, plainTable);
    plainTimes.push(performance.now() - t0);
  }
  hostile.push(`  the same without the prefilter: first ${plainTimes[0].toFixed(1)} ms, median ${median(plainTimes).toFixed(1)} ms`);
  for (const n of [27, 30, 33]) {
    const re = /^(a|aa)+$/i;
    const t0 = performance.now();
    re.test(`${'a'.repeat(n)}!`);
    hostile.push(`RegExp ^(a|aa)+$ on ${n + 1} chars: ${(performance.now() - t0).toFixed(1)} ms`);
  }

  // Compiling the seed table, as a worker does at start and after every rule change.
  const loads: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    loadQualificationRules(seed);
    loads.push(performance.now() - t0);
  }
  const nativeLoads: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    for (const r of seed.rules) for (const src of [r.pattern, (r as { domain?: string | null }).domain]) if (src) new RegExp(src, 'i');
    nativeLoads.push(performance.now() - t0);
  }

  const cpu = os.cpus();
  console.log(`machine: ${cpu.length} × ${cpu[0]?.model ?? '?'}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}; load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(`corpus: ${CORPUS} (${messages.length} messages, ${replies.length} replies); rounds ${ROUNDS}; disagreements between engines: ${disagreements}`);
  console.log(
    `qualifySmtpReply, µs per reply (median): RegExp ${median(q.native).toFixed(1)}, RE2 ${median(q.re2).toFixed(1)} (×${(median(q.re2) / median(q.native)).toFixed(1)}), ` +
      `RE2 without the prefilter ${median(q.plain).toFixed(1)} (×${(median(q.plain) / median(q.native)).toFixed(1)})`,
  );
  console.log(`classifyInboundMessage, ms per message (median): RegExp ${median(c.native).toFixed(2)}, RE2 ${median(c.re2).toFixed(2)} (×${(median(c.re2) / median(c.native)).toFixed(1)})`);
  console.log(
    `compiling the seed table (${seed.rules.length} rules, validation included), ms: RE2 first ${firstLoadMs.toFixed(1)}, again (patterns cached) ${median(loads).toFixed(1)}; ` +
      `RegExp alone (regexes only) ${median(nativeLoads).toFixed(1)}`,
  );
  for (const h of hostile) console.log(h);
  const commit = (() => {
    try {
      return execSync('git rev-parse --short HEAD', { cwd: join(__dirname, '..') }).toString().trim();
    } catch {
      return null;
    }
  })();
  const result = {
    date: new Date().toISOString(),
    commit,
    machine: { cpus: cpu.length, model: cpu[0]?.model ?? null, memoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)), node: process.version, loadAverage: os.loadavg() },
    corpus: { path: CORPUS, messages: messages.length, replies: replies.length },
    rounds: ROUNDS,
    disagreements,
    qualifyMicrosPerReply: { regexp: median(q.native), re2: median(q.re2), re2WithoutPrefilter: median(q.plain) },
    classifyMsPerMessage: { regexp: median(c.native), re2: median(c.re2) },
    seedTableCompileMs: { re2First: firstLoadMs, re2Again: median(loads), regexpRegexesOnly: median(nativeLoads) },
    hostile,
  };
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`written to ${OUT}`);
  if (disagreements > 0) process.exitCode = 1;
}

void main();

/**
 * Classifies .eml files with the seed rule tables, no database: one JSON line per file on standard output, in the
 * order given, and nothing else there (diagnostics go to standard error).
 *   npm run classify -- FILE.eml...
 */
import { readFile } from 'node:fs/promises';
import { classifyInboundMessage } from '../mail/inbound/classify';
import { getDefaultInboundRuleTables } from '../domain/bounce-rules/default-inbound-rules';

/** Files read ahead while earlier ones are classified; output order stays the argument order. */
const READ_AHEAD = 16;

async function main(files: string[]): Promise<number> {
  if (files.length === 0) {
    process.stderr.write('usage: npm run classify -- FILE.eml...\n');
    return 2;
  }
  const tables = getDefaultInboundRuleTables();
  let failures = 0;
  const pending: Array<Promise<string>> = [];
  const classifyOne = async (file: string): Promise<string> => {
    try {
      const c = await classifyInboundMessage(await readFile(file), tables);
      return JSON.stringify({
        file,
        kind: c.kind,
        recipients: c.recipients.map((r) => ({ recipient: r.recipient, type: r.type, reason: r.reason, status: r.status, remoteMta: r.remoteMta, rule: r.rule })),
      });
    } catch (e) {
      failures++;
      process.stderr.write(`${file}: ${(e as Error).message}\n`);
      return JSON.stringify({ file, error: (e as Error).message, recipients: [] });
    }
  };
  let next = 0;
  while (next < files.length && pending.length < READ_AHEAD) pending.push(classifyOne(files[next++]));
  while (pending.length > 0) {
    const line = await pending.shift()!;
    process.stdout.write(`${line}\n`);
    if (next < files.length) pending.push(classifyOne(files[next++]));
  }
  return failures > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exitCode = 1;
  },
);

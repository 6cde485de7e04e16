/**
 * The compose file check (`npm run compose:check`) passes on docker-compose.yml and fails on broken copies of it:
 * what the compose specification's loader refuses, and what breaks the production layout's rules.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildComposeLoader, checkComposeFile } from '../../stack/cluster/compose-check';

const ROOT = path.resolve(__dirname, '..', '..');
const ORIGINAL = fs.readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
let loader: string;
let dir: string;

/** A copy of docker-compose.yml changed by `edit`, beside copies of what it mounts, checked with the real Dockerfile. */
function check(edit: (text: string) => string): string[] {
  const text = edit(ORIGINAL);
  const file = path.join(dir, 'docker-compose.yml');
  fs.writeFileSync(file, text);
  return checkComposeFile(file, { loader, dockerfile: path.join(ROOT, 'Dockerfile') });
}

beforeAll(() => {
  loader = buildComposeLoader();
  // The copy lives in a folder whose relative paths (./stack/cluster/...) resolve to the real files.
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'compose-check-'));
  fs.symlinkSync(path.join(ROOT, 'stack'), path.join(dir, 'stack'));
  fs.copyFileSync(path.join(ROOT, '.dockerignore'), path.join(dir, '.dockerignore'));
}, 300_000);

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('compose file check', () => {
  it('accepts docker-compose.yml as it is', () => {
    expect(checkComposeFile(path.join(ROOT, 'docker-compose.yml'), { loader })).toEqual([]);
    expect(check((t) => t)).toEqual([]);
  });

  const broken: [string, (t: string) => string, RegExp][] = [
    ['a YAML syntax error', (t) => t.replace('services:\n', 'services:\n  oops: [\n'), /compose loader refused/],
    ['a key the compose specification does not have', (t) => t.replace('  temporal-ui:\n', '  temporal-ui:\n    restart_policy: always\n'), /compose loader refused.*restart_policy/s],
    ['a dependency on a service that does not exist', (t) => t.replace('      temporal-namespace:\n        condition: service_completed_successfully', '      temporal-namespaces:\n        condition: service_completed_successfully'), /compose loader refused|temporal-search-attributes must depend on temporal-namespace/],
    ['a wrong depends_on condition', (t) => t.replace('condition: service_completed_successfully', 'condition: service_finished'), /compose loader refused/],
    ['the admin-tools tag that does not exist', (t) => t.replace('temporalio/admin-tools:1.29.1-tctl-1.18.4-cli-1.5.0', 'temporalio/admin-tools:1.29.1'), /admin-tools:1\.29\.1 has no evidence/],
    ['a required setting with a default', (t) => t.replace(/\$\{BOUNCE_DOMAIN:\?[^}]*\}/, '${BOUNCE_DOMAIN:-bounces.example.com}'), /BOUNCE_DOMAIN is not required/],
    ['PUBLIC_URL hard-coded to localhost', (t) => t.replace(/PUBLIC_URL: \$\{PUBLIC_URL:\?[^}]*\}\n    BOUNCE/, 'PUBLIC_URL: http://localhost:3000\n    BOUNCE'), /PUBLIC_URL (is not required|points at a local address)/],
    ['Temporal published on every interface', (t) => t.replace('"127.0.0.1:7233:7233"', '"7233:7233"'), /temporal: port 7233:7233 is published on every interface/],
    ['the search attributes registered before the namespace exists', (t) => t.replace('      temporal-namespace:\n        condition: service_completed_successfully', '      temporal:\n        condition: service_healthy'), /temporal-search-attributes must depend on temporal-namespace/],
    ['a search attribute missing', (t) => t.replace(',DeliveryState=Keyword', ''), /SEARCH_ATTRIBUTES=/],
    ['another history shard count than the local layout', (t) => t.replace('NUM_HISTORY_SHARDS: "8"', 'NUM_HISTORY_SHARDS: "4"'), /NUM_HISTORY_SHARDS=4/],
    ['no health check on the UI', (t) => t.replace(/(  temporal-ui:[\s\S]*?)    healthcheck:\n(      .*\n)+/, '$1'), /temporal-ui: a long-running service needs a health check/],
    ['no restart policy on Postgres', (t) => t.replace(/(  app-postgres:\n    image: postgres:18-bookworm\n)    restart: unless-stopped\n/, '$1'), /app-postgres: a long-running service needs a restart policy/],
    ['the development image auto-setup', (t) => t.replace('image: temporalio/server:1.29.1', 'image: temporalio/auto-setup:1.29.1'), /auto-setup:1\.29\.1 has no evidence/],
  ];
  for (const [what, edit, expected] of broken) {
    it(`refuses ${what}`, () => {
      expect(edit(ORIGINAL), 'the edit no longer changes docker-compose.yml').not.toBe(ORIGINAL);
      const problems = check(edit);
      expect(problems.join('\n')).toMatch(expected);
    });
  }
});

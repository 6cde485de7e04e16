/**
 * The dashboard's rules pages (#/rules/qualification, #/rules/inbound; docs/dashboard.md) in headless Chromium against
 * the real stack (Postgres rule tables, the API): an admin key lists the rules (as many as the API), filters them, tries
 * a reply or a message and sees the rule the API names for it; adds a rule with a pattern RE2 refuses and sees the API's
 * error naming the field; adds a valid one, which the list shows and "try" then matches; edits, disables and deletes it.
 * A read key sees the lists and the try forms, and no control that changes a rule. axe-core runs on both pages; the
 * screenshot docs/images/dashboard-rules.png is written by this run.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { expectAccessible, launchChromium, newPage as openPage, PageErrors, signIn as signInAt, VIEWPORT } from './support/dashboard-browser';
import { startHarness, type Harness } from './support/harness';
import { apiCall } from './support/http';
import { RETRY_CLASSES } from '../domain/failure';
import { INBOUND_RULE_KINDS } from '../domain/bounce-rules/inbound-rule';
import { seedInboundRules } from '../db/inbound-rule-store';

const IMAGES_DIR = path.join(__dirname, '..', 'docs', 'images');
const u = randomUUID().slice(0, 8);
const QUALIFICATION = '/api/qualification-rules';
const INBOUND = '/api/inbound-rules';
/** The rules this file adds (the database is shared with the other test files): removed in afterAll whatever happens. */
const QUALIFICATION_ID = `dashboard-probe-${u}`;
const INBOUND_ID = `dashboard-inbound-probe-${u}`;
/** Words only these rules match, so that no other test's reply or message meets them. */
const MARKER = `dashboard probe ${u}`;
const INBOUND_MARKER = `dashboard inbound probe ${u}`;
/** A look-behind: JavaScript's RegExp takes it, RE2 does not (domain/patterns/safe-pattern.ts). */
const LOOK_BEHIND = '(?<=x)y';

let h: Harness;
let browser: Browser;
let readKey = '';
const errors = new PageErrors();

type Rule = { id: string; enabled: boolean; origin: string; priority: number };

beforeAll(async () => {
  // No delivery is sent here: the rule routes need Postgres and the API only.
  h = await startHarness({ worker: false });
  // Every process seeds the inbound rules at start-up; the test database's global setup seeds only the qualification
  // and MX rules. The same bundled seed (idempotent by version), so later files classify as they would without it.
  await seedInboundRules(h.pool);
  readKey = (await h.createApiKey(['read'], `dashboard rules read ${u}`)).secret;
  browser = await launchChromium();
  fs.mkdirSync(IMAGES_DIR, { recursive: true });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  if (h) {
    await apiCall(h.apiUrl, 'DELETE', `${QUALIFICATION}/${QUALIFICATION_ID}`);
    await apiCall(h.apiUrl, 'DELETE', `${INBOUND}/${INBOUND_ID}`);
    await h.stop();
  }
});

afterEach(() => errors.expectNone());

const newPage = () => openPage(browser, errors);
/** Signs in on a rules page's own link: the page opens there once the session is open. */
const signIn = (page: Page, key: string, table: 'qualification' | 'inbound') =>
  signInAt(page, h.apiUrl, key, { hash: `#/rules/${table}`, heading: table === 'qualification' ? 'Qualification rules' : 'Inbound rules' });

const poll = <T>(probe: () => T | Promise<T>) => expect.poll(probe, { timeout: 15_000 });
const rows = (page: Page) => page.locator('tr[data-rule]');
const field = (page: Page, label: string) => page.getByLabel(label, { exact: true });
const ruleRow = (page: Page, id: string) => page.locator(`tr[data-rule="${id}"]`);
const rulesOf = async (base: string): Promise<Rule[]> => (await apiCall(h.apiUrl, 'GET', base)).json.rules as Rule[];
const ruleCount = (base: string) => rulesOf(base).then((r) => r.length);
const triedRules = (page: Page) => page.getByTestId('try-rule').allTextContents();

describe('the rules pages', () => {
  it('lets an admin key list, filter and try the qualification rules, and add, edit, disable and delete one', async () => {
    const page = await newPage();
    await signIn(page, h.apiKey, 'qualification');
    const listed = await rulesOf(QUALIFICATION);
    expect(listed.length).toBeGreaterThan(100);
    await poll(() => rows(page).count()).toBe(listed.length);
    // The page's order is the API's (evaluation order).
    expect(await rows(page).evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-rule')))).toEqual(listed.map((r) => r.id));

    // The filter box narrows the list in the page.
    const some = listed[Math.floor(listed.length / 2)];
    await field(page, 'Filter rules').fill(some.id);
    await poll(() => ruleRow(page, some.id).count()).toBe(1);
    expect(await rows(page).count()).toBeLessThan(listed.length);
    expect(await page.getByTestId('rule-count').textContent()).toMatch(new RegExp(`^${await rows(page).count()} of ${listed.length} rules`));
    await field(page, 'Filter rules').fill('');
    await poll(() => rows(page).count()).toBe(listed.length);

    // Try a reply: the rule and qualification the API answers for it, and its evaluation time.
    const reply = '550 5.1.1 <ada@example.com>: Recipient address rejected: User unknown in virtual mailbox table';
    const answered = (await apiCall(h.apiUrl, 'POST', `${QUALIFICATION}/test`, { reply })).json;
    expect(answered.matched).toBe(true);
    await field(page, 'SMTP reply').fill(reply);
    await page.getByRole('button', { name: 'Try the reply' }).click();
    await poll(() => page.getByTestId('try-rule').textContent()).toBe(answered.ruleId);
    expect(await page.getByTestId('try-qualification').textContent()).toContain(answered.qualification.reason.replace(/_/g, ' '));
    expect(await page.getByTestId('try-time').textContent()).toMatch(new RegExp(`^\\d+(\\.\\d+)? ms over ${answered.rulesEvaluated} enabled rules$`));
    await expectAccessible(page, 'qualification rules page (admin, after a try)');

    // A pattern RE2 refuses: the API's 400 names the rule and the field, and the page shows it next to the form.
    await page.getByRole('button', { name: 'Add a rule' }).click();
    await field(page, 'Id').fill(QUALIFICATION_ID);
    await field(page, 'Priority').fill('1');
    await field(page, 'Provider').fill('dashboard-test');
    await field(page, 'Pattern on the reply text').fill(LOOK_BEHIND);
    await field(page, 'Failure type').selectOption('soft');
    await field(page, 'Failure reason').selectOption('refused');
    await field(page, 'Retry class').selectOption('none');
    await field(page, 'Sample reply').fill(`550 5.7.1 Message refused: ${MARKER}`);
    await field(page, 'Note').fill('Added by the dashboard test.');
    const body = {
      priority: 1,
      provider: 'dashboard-test',
      code: null,
      enhancedCode: null,
      domain: null,
      pattern: LOOK_BEHIND,
      type: 'soft',
      reason: 'refused',
      retryClass: 'none',
      sample: `550 5.7.1 Message refused: ${MARKER}`,
      note: 'Added by the dashboard test.',
    };
    const refused = await apiCall(h.apiUrl, 'PUT', `${QUALIFICATION}/${QUALIFICATION_ID}`, body);
    expect(refused.status).toBe(400);
    expect(refused.json.issues.map((i: { path: string }) => i.path)).toEqual(['pattern']);
    await page.getByRole('button', { name: 'Add rule' }).click();
    const alert = page.locator('#rule-form-error [role="alert"]');
    await poll(() => alert.textContent()).toBe(refused.json.error);
    expect(refused.json.error).toMatch(new RegExp(`"${QUALIFICATION_ID}": pattern: `));
    expect(await field(page, 'Pattern on the reply text').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('#rule-pattern-error').textContent()).toBe(refused.json.issues[0].message);
    expect((await apiCall(h.apiUrl, 'GET', `${QUALIFICATION}/${QUALIFICATION_ID}`)).status).toBe(404);
    await expectAccessible(page, 'qualification rule form with an error');

    // A valid one: listed as a custom rule, stored as the API shows it, and the one "try" now finds for its reply.
    await field(page, 'Pattern on the reply text').fill(MARKER);
    await page.getByRole('button', { name: 'Add rule' }).click();
    await poll(() => page.getByTestId('rule-outcome').textContent()).toMatch(new RegExp(`^Rule ${QUALIFICATION_ID} added`));
    await poll(() => ruleRow(page, QUALIFICATION_ID).count()).toBe(1);
    expect(await ruleRow(page, QUALIFICATION_ID).textContent()).toMatch(/Enabled.*Custom/);
    expect(await rows(page).count()).toBe(listed.length + 1);
    const stored = (await apiCall(h.apiUrl, 'GET', `${QUALIFICATION}/${QUALIFICATION_ID}`)).json;
    expect(stored).toMatchObject({ ...body, pattern: MARKER, origin: 'api', enabled: true });
    const probe = `550 5.7.1 Message refused: ${MARKER}`;
    await field(page, 'SMTP reply').fill(probe);
    await page.getByRole('button', { name: 'Try the reply' }).click();
    await poll(() => page.getByTestId('try-rule').textContent()).toBe(QUALIFICATION_ID);
    expect((await apiCall(h.apiUrl, 'POST', `${QUALIFICATION}/test`, { reply: probe })).json.ruleId).toBe(QUALIFICATION_ID);
    // The top of the page: the try form with its answer, the new rule and the first rows after it.
    await page.screenshot({ path: path.join(IMAGES_DIR, 'dashboard-rules.png'), fullPage: true, clip: { x: 0, y: 0, width: VIEWPORT.width, height: 1500 } });
    expect(fs.statSync(path.join(IMAGES_DIR, 'dashboard-rules.png')).size).toBeGreaterThan(10_000);

    // Edit: the form holds the stored rule; its id cannot change; the new priority is what the API then has.
    await page.getByRole('button', { name: `Edit rule ${QUALIFICATION_ID}` }).click();
    expect(await field(page, 'Pattern on the reply text').inputValue()).toBe(MARKER);
    expect(await field(page, 'Id').getAttribute('readonly')).not.toBeNull();
    await field(page, 'Priority').fill('2');
    await page.getByRole('button', { name: 'Save rule' }).click();
    await poll(() => page.getByTestId('rule-outcome').textContent()).toMatch(new RegExp(`^Rule ${QUALIFICATION_ID} saved`));
    expect((await apiCall(h.apiUrl, 'GET', `${QUALIFICATION}/${QUALIFICATION_ID}`)).json.priority).toBe(2);

    // Disabled: the API has it off, and the same reply goes to the rule the API now names.
    await page.getByRole('button', { name: `Disable rule ${QUALIFICATION_ID}` }).click();
    await poll(async () => (await apiCall(h.apiUrl, 'GET', `${QUALIFICATION}/${QUALIFICATION_ID}`)).json.enabled).toBe(false);
    await poll(() => ruleRow(page, QUALIFICATION_ID).textContent()).toContain('Disabled');
    const without = (await apiCall(h.apiUrl, 'POST', `${QUALIFICATION}/test`, { reply: probe })).json;
    expect(without.ruleId).not.toBe(QUALIFICATION_ID);
    await page.getByRole('button', { name: 'Try the reply' }).click();
    await poll(() => page.getByTestId('try-rule').textContent()).toBe(without.ruleId);
    await page.getByRole('button', { name: `Enable rule ${QUALIFICATION_ID}` }).click();
    await poll(async () => (await apiCall(h.apiUrl, 'GET', `${QUALIFICATION}/${QUALIFICATION_ID}`)).json.enabled).toBe(true);

    // Deleted after a confirmation (dismissing it deletes nothing).
    page.once('dialog', (d) => void d.dismiss());
    await page.getByRole('button', { name: `Delete rule ${QUALIFICATION_ID}` }).click();
    await page.waitForTimeout(500);
    expect((await apiCall(h.apiUrl, 'GET', `${QUALIFICATION}/${QUALIFICATION_ID}`)).status).toBe(200);
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: `Delete rule ${QUALIFICATION_ID}` }).click();
    await poll(async () => (await apiCall(h.apiUrl, 'GET', `${QUALIFICATION}/${QUALIFICATION_ID}`)).status).toBe(404);
    await poll(() => ruleRow(page, QUALIFICATION_ID).count()).toBe(0);
    expect(await rows(page).count()).toBe(await ruleCount(QUALIFICATION));
    await page.context().close();
  });

  it('lets an admin key list and try the inbound rules, and add and delete one', async () => {
    const page = await newPage();
    await signIn(page, h.apiKey, 'inbound');
    const count = await ruleCount(INBOUND);
    expect(count).toBeGreaterThan(5);
    await poll(() => rows(page).count()).toBe(count);

    // Try a message given by its parts: the page sends it composed; the API gives the same rules for it.
    await field(page, 'From').fill('MAILER-DAEMON@mx.example.org');
    await field(page, 'Subject').fill('failure notice');
    await field(page, 'Body').fill('Hi. This is the qmail-send program at mx.example.org.\n\n<alice@example.com>:\nSorry, no mailbox here by that name. (#5.1.1)\n');
    const sent = page.waitForRequest((r) => r.url().endsWith(`${INBOUND}/test`));
    await page.getByRole('button', { name: 'Try the message' }).click();
    const message = ((await sent).postDataJSON() as { message: string }).message;
    expect(message).toMatch(/^From: MAILER-DAEMON@mx\.example\.org\r\nSubject: failure notice\r\n/);
    expect(message).toContain('Sorry, no mailbox here by that name.');
    const answered = (await apiCall(h.apiUrl, 'POST', `${INBOUND}/test`, { message })).json;
    const expected = (answered.classification.recipients as { rule: string }[]).map((r) => r.rule);
    expect(expected.length).toBeGreaterThan(0);
    await poll(() => triedRules(page)).toEqual(expected);
    expect(await page.getByTestId('try-kind').textContent()).toBe(answered.classification.kind.replace(/_/g, ' '));
    expect(await page.getByTestId('try-time').textContent()).toMatch(new RegExp(`^\\d+(\\.\\d+)? ms \\(parsing and classifying\\), ${answered.rulesEvaluated} enabled inbound rules$`));
    expect(typeof answered.evaluationMs).toBe('number');
    await expectAccessible(page, 'inbound rules page (admin, after a try)');

    // A body pattern RE2 refuses: the API's error, naming the field, next to the form.
    await page.getByRole('button', { name: 'Add a rule' }).click();
    await field(page, 'Id').fill(INBOUND_ID);
    await field(page, 'Priority').fill('1');
    await field(page, 'Source').fill('dashboard-test');
    await field(page, 'Kind').selectOption('bounce');
    await field(page, 'Body pattern').fill(LOOK_BEHIND);
    await field(page, 'Failure type').selectOption('hard');
    await field(page, 'Failure reason').selectOption('refused');
    await field(page, 'Sample body').fill(`The message was refused: ${INBOUND_MARKER}.`);
    await field(page, 'Note').fill('Added by the dashboard test.');
    const refused = await apiCall(h.apiUrl, 'PUT', `${INBOUND}/${INBOUND_ID}`, {
      priority: 1,
      source: 'dashboard-test',
      kind: 'bounce',
      from: null,
      subject: null,
      body: LOOK_BEHIND,
      type: 'hard',
      reason: 'refused',
      retryClass: 'none',
      sample: { body: `The message was refused: ${INBOUND_MARKER}.` },
      note: 'Added by the dashboard test.',
    });
    expect(refused.status).toBe(400);
    expect(refused.json.issues.map((i: { path: string }) => i.path)).toEqual(['body']);
    await page.getByRole('button', { name: 'Add rule' }).click();
    await poll(() => page.locator('#rule-form-error [role="alert"]').textContent()).toBe(refused.json.error);
    expect(await field(page, 'Body pattern').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('#rule-body-error').textContent()).toBe(refused.json.issues[0].message);

    // A valid one: listed, and the rule a raw bounce with its words gets, in the page as in the API.
    await field(page, 'Body pattern').fill(INBOUND_MARKER);
    await page.getByRole('button', { name: 'Add rule' }).click();
    await poll(() => ruleRow(page, INBOUND_ID).count()).toBe(1);
    expect(await ruleRow(page, INBOUND_ID).textContent()).toMatch(/Bounce.*Enabled.*Custom/);
    expect((await apiCall(h.apiUrl, 'GET', `${INBOUND}/${INBOUND_ID}`)).json).toMatchObject({ body: INBOUND_MARKER, origin: 'api', enabled: true });
    const raw = ['From: MAILER-DAEMON@mx.example.org', 'To: b-1-2-abc@bounces.example.net', 'Subject: failure notice', '', 'Hi. This is the mail transport agent at mx.example.org.', '', '<alice@example.com>:', `The message was refused: ${INBOUND_MARKER}.`, ''].join('\n');
    const apiRules = ((await apiCall(h.apiUrl, 'POST', `${INBOUND}/test`, { message: raw })).json.classification.recipients as { rule: string }[]).map((r) => r.rule);
    expect(apiRules).toEqual([`inbound-rule:${INBOUND_ID}`]);
    await page.getByLabel('The raw message (headers, a blank line, the body)').check();
    await field(page, 'Raw message').fill(raw);
    await page.getByRole('button', { name: 'Try the message' }).click();
    await poll(() => triedRules(page)).toEqual(apiRules);
    await expectAccessible(page, 'inbound rules page with a custom rule');

    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: `Delete rule ${INBOUND_ID}` }).click();
    await poll(async () => (await apiCall(h.apiUrl, 'GET', `${INBOUND}/${INBOUND_ID}`)).status).toBe(404);
    await poll(() => ruleRow(page, INBOUND_ID).count()).toBe(0);
    expect(await rows(page).count()).toBe(await ruleCount(INBOUND));
    await page.context().close();
  });

  it('shows a read key both lists and the try forms, and no control that changes a rule', async () => {
    const page = await newPage();
    await signIn(page, readKey, 'qualification');
    expect(await page.getByTestId('scopes').textContent()).toBe('read');
    const nav = page.getByRole('navigation', { name: 'Main' });
    expect(await nav.getByRole('link', { name: 'Rules' }).getAttribute('aria-current')).toBe('page');
    await poll(async () => rows(page).count()).toBe(await ruleCount(QUALIFICATION));
    const reply = '452 4.2.2 The email account that you tried to reach is over quota.';
    await field(page, 'SMTP reply').fill(reply);
    await page.getByRole('button', { name: 'Try the reply' }).click();
    const expected = (await apiCall(h.apiUrl, 'POST', `${QUALIFICATION}/test`, { reply }, { apiKey: readKey })).json.ruleId;
    await poll(() => page.getByTestId('try-rule').textContent()).toBe(expected);
    const controls = /Add a rule|Add rule|Save rule|^Edit|^Disable|^Enable|^Delete/;
    expect(await page.getByRole('button', { name: controls }).count()).toBe(0);
    expect(await page.getByText('needs an admin key').count()).toBe(1);
    await expectAccessible(page, 'qualification rules page (read key)');

    await page.getByRole('navigation', { name: 'Rule tables' }).getByRole('link', { name: /Inbound rules/ }).click();
    await page.getByRole('heading', { level: 1, name: 'Inbound rules' }).waitFor();
    await poll(async () => rows(page).count()).toBe(await ruleCount(INBOUND));
    expect(await field(page, 'Body').count()).toBe(1);
    expect(await page.getByRole('button', { name: 'Try the message' }).count()).toBe(1);
    expect(await page.getByRole('button', { name: controls }).count()).toBe(0);
    await expectAccessible(page, 'inbound rules page (read key)');
    await page.context().close();
  });

  it("offers the engine's retry classes and inbound rule kinds (dashboard/format.js repeats them: it has no build step)", async () => {
    const format: { RETRY_CLASSES: Record<string, string>; INBOUND_RULE_KINDS: Record<string, string> } = await import(pathToFileURL(path.join(__dirname, '..', 'dashboard', 'format.js')).href);
    expect(Object.keys(format.RETRY_CLASSES)).toEqual([...RETRY_CLASSES]);
    expect(Object.keys(format.INBOUND_RULE_KINDS)).toEqual([...INBOUND_RULE_KINDS]);
  });
});

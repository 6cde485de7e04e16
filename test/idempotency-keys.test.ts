/**
 * Idempotency-Key on the API (docs/idempotency-keys.md): a retried create makes one delivery, another body with the
 * key is a 422, concurrent requests with one key run once, a create whose API process died half-way is completed by
 * the retry, a retried control update is replayed, a retried CSV upload makes one list, an expired key runs again.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness';
import { apiCall, authHeaders, request } from './support/http';
import { deliveryWorkflowId } from '../workflows/contract';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({});
});
afterAll(async () => {
  await h?.stop();
});

const DOMAIN = 'idem.example';
const content = { from: `news@${DOMAIN}`, subject: 'Hello {{firstName}}', text: 'Hello {{firstName}}' };
const recipients = (n: number, tag: string) => Array.from({ length: n }, (_, i) => ({ email: `${tag}${i}@${DOMAIN}`, fields: { firstName: `N${i}` } }));
const withKey = (key: string) => ({ headers: { 'idempotency-key': key } });

async function deliveriesNamed(name: string): Promise<string[]> {
  return (await h.pool.query<{ id: string }>('SELECT id FROM deliveries WHERE name = $1', [name])).rows.map((r) => r.id);
}

describe('Idempotency-Key', () => {
  it('a create retried after the client gave up makes one delivery, and the retry gets the first answer', async () => {
    const name = `idem-timeout-${randomUUID()}`;
    const key = randomUUID();
    const body = { ...content, name, recipients: recipients(3_000, 't'), autoConfirm: false };
    // The client gives up once the server has the request (its key is claimed), before the answer: its timeout.
    const controller = new AbortController();
    const first = fetch(`${h.apiUrl}/api/deliveries`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key, ...authHeaders(h.apiUrl) },
      body: JSON.stringify(body),
      signal: controller.signal,
    }).then(
      () => 'answered',
      (e: Error) => e.name,
    );
    const claimDeadline = Date.now() + 30_000;
    while ((await h.pool.query('SELECT 1 FROM idempotency_keys WHERE idempotency_key = $1', [key])).rowCount === 0) {
      if (Date.now() > claimDeadline) throw new Error('the first request never claimed its key');
      await new Promise((r) => setTimeout(r, 5));
    }
    controller.abort();
    const aborted = await first;
    expect(aborted).toBe('AbortError');
    // Retries until the first request's answer is there: 409 (still running) is the only other answer allowed.
    let retry = await apiCall(h.apiUrl, 'POST', '/api/deliveries', body, withKey(key));
    const seen = new Set<number>([retry.status]);
    const deadline = Date.now() + 60_000;
    while (retry.status === 409 && Date.now() < deadline) {
      expect(retry.headers.get('retry-after')).toBe('1');
      await new Promise((r) => setTimeout(r, 200));
      retry = await apiCall(h.apiUrl, 'POST', '/api/deliveries', body, withKey(key));
      seen.add(retry.status);
    }
    expect([...seen].every((s) => s === 409 || s === 201)).toBe(true);
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.json.recipients).toBe(3_000);
    expect(await deliveriesNamed(name)).toEqual([retry.json.id]);
    // And again: same answer, still one delivery.
    const again = await apiCall(h.apiUrl, 'POST', '/api/deliveries', body, withKey(key));
    expect(again.status).toBe(201);
    expect(again.json).toEqual(retry.json);
    expect(await deliveriesNamed(name)).toHaveLength(1);
  });

  it('the same key with a different body is a 422 naming the key, and changes nothing', async () => {
    const key = randomUUID();
    const name = `idem-422-${randomUUID()}`;
    const first = await apiCall(h.apiUrl, 'POST', '/api/deliveries', { ...content, name, recipients: recipients(2, 'a') }, withKey(key));
    expect(first.status).toBe(201);
    const other = await apiCall(h.apiUrl, 'POST', '/api/deliveries', { ...content, name: `${name}-other`, recipients: recipients(2, 'a') }, withKey(key));
    expect(other.status).toBe(422);
    expect(other.json.error).toContain(key);
    expect(await deliveriesNamed(`${name}-other`)).toHaveLength(0);
    // The same data in another key order is the same request.
    const reordered = await apiCall(h.apiUrl, 'POST', '/api/deliveries', { recipients: recipients(2, 'a'), name, ...content }, withKey(key));
    expect(reordered.status).toBe(201);
    expect(reordered.json.id).toBe(first.json.id);
    // Another path with the key is another request too.
    const elsewhere = await apiCall(h.apiUrl, 'POST', `/api/deliveries/${first.json.id}/pause`, {}, withKey(key));
    expect(elsewhere.status).toBe(422);
  });

  it('refuses a malformed key with a 400 naming the header, before anything runs', async () => {
    const name = `idem-bad-key-${randomUUID()}`;
    const r = await apiCall(h.apiUrl, 'POST', '/api/deliveries', { ...content, name, recipients: recipients(1, 'b') }, withKey('x'.repeat(256)));
    expect(r.status).toBe(400);
    expect(r.json.issues[0].path).toBe('Idempotency-Key');
    expect(await deliveriesNamed(name)).toHaveLength(0);
  });

  it('concurrent requests with one key: one runs, the others wait (409) or get its answer', async () => {
    const key = randomUUID();
    const name = `idem-race-${randomUUID()}`;
    const body = { ...content, name, recipients: recipients(500, 'c') };
    const answers = await Promise.all(Array.from({ length: 6 }, () => apiCall(h.apiUrl, 'POST', '/api/deliveries', body, withKey(key))));
    const statuses = answers.map((a) => a.status);
    expect(statuses.every((s) => s === 201 || s === 409)).toBe(true);
    expect(statuses.filter((s) => s === 201).length).toBeGreaterThanOrEqual(1);
    const ids = new Set(answers.filter((a) => a.status === 201).map((a) => a.json.id));
    expect(ids.size).toBe(1);
    expect(await deliveriesNamed(name)).toEqual([...ids]);
  });

  it('a create whose API process died after storing the delivery is completed by the retry, and the delivery sends', async () => {
    const key = randomUUID();
    const name = `idem-takeover-${randomUUID()}`;
    const body = { ...content, name, recipients: recipients(4, 'd'), autoConfirm: true };
    // What a process killed between the delivery's transaction and its workflow start leaves: the key in progress with
    // a lapsed lease, and the delivery stored under the key's resource id, without its workflow.
    const ownerId = (await h.pool.query<{ id: string }>('SELECT id FROM api_keys WHERE secret_sha256 = sha256($1::bytea)', [Buffer.from(h.apiKey)])).rows[0].id;
    const first = await apiCall(h.apiUrl, 'POST', '/api/deliveries', body, withKey(key));
    expect(first.status).toBe(201);
    // Replaying a death needs a delivery with no workflow: the first one is cancelled and its row is reused as the
    // orphan of a new key (the same body, so the fingerprint matches).
    const orphanKey = randomUUID();
    const resourceId = randomUUID();
    const claim = await h.pool.query(
      `INSERT INTO idempotency_keys (owner, idempotency_key, request_hash, method, path, resource_id, state, locked_until, expires_at)
       SELECT owner, $2, request_hash, method, path, $3, 'in_progress', now() - interval '1 second', now() + interval '1 hour'
       FROM idempotency_keys WHERE owner = $1 AND idempotency_key = $4`,
      [ownerId, orphanKey, resourceId, key],
    );
    expect(claim.rowCount).toBe(1);
    await h.pool.query(
      `INSERT INTO deliveries (id, name, from_address, from_name, from_domain, reply_to, subject, html, text_body, auto_confirm,
         validity_seconds, contact_date, options, list_id, recipients_loaded_at)
       SELECT $2, name, from_address, from_name, from_domain, reply_to, subject, html, text_body, auto_confirm,
         validity_seconds, contact_date, options, list_id, now() FROM deliveries WHERE id = $1`,
      [first.json.id, resourceId],
    );
    await h.pool.query(
      `INSERT INTO delivery_recipients (delivery_id, recipient_id, address, domain, address_key, syntax_problem, fields)
       SELECT $2, recipient_id, address, domain, address_key, syntax_problem, fields FROM delivery_recipients WHERE delivery_id = $1`,
      [first.json.id, resourceId],
    );
    await expect(h.client.workflow.getHandle(deliveryWorkflowId(resourceId)).describe()).rejects.toThrow();

    const retry = await apiCall(h.apiUrl, 'POST', '/api/deliveries', body, withKey(orphanKey));
    expect(retry.status).toBe(201);
    expect(retry.json).toMatchObject({ id: resourceId, recipients: 4 });
    const done = await h.waitForPhase(resourceId, ['completed'], 120_000);
    expect(done.kpis).toMatchObject({ toDeliver: 4, sent: 4 });
    // The retry's answer is now the key's: a further retry replays it and starts nothing.
    const again = await apiCall(h.apiUrl, 'POST', '/api/deliveries', body, withKey(orphanKey));
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.json.id).toBe(resourceId);
  });

  it('a pause retried with its key gets the first answer instead of "already paused"', async () => {
    const id = await h.createDelivery({ ...content, name: `idem-pause-${randomUUID()}`, recipients: recipients(2, 'e'), contactDate: new Date(Date.now() + 3_600_000).toISOString(), autoConfirm: true });
    await h.waitForPhase(id, ['scheduled'], 60_000);
    const key = randomUUID();
    const first = await apiCall(h.apiUrl, 'POST', `/api/deliveries/${id}/pause`, { reason: 'retry test' }, withKey(key));
    expect(first.status).toBe(200);
    const retried = await apiCall(h.apiUrl, 'POST', `/api/deliveries/${id}/pause`, { reason: 'retry test' }, withKey(key));
    expect(retried.status).toBe(200);
    expect(retried.headers.get('idempotent-replayed')).toBe('true');
    expect(retried.json).toEqual(first.json);
    // Without the key the same request is a second pause, which the workflow refuses.
    expect((await apiCall(h.apiUrl, 'POST', `/api/deliveries/${id}/pause`, { reason: 'retry test' })).status).toBe(409);
    await apiCall(h.apiUrl, 'POST', `/api/deliveries/${id}/cancel`, {});
  });

  it('a CSV upload retried with its key makes one list; another CSV with the key is a 422', async () => {
    const name = `idem-list-${randomUUID()}`;
    const key = randomUUID();
    const csv = `email,firstName\n${recipients(50, 'l').map((r) => `${r.email},${r.fields.firstName}`).join('\n')}\n`;
    const upload = (body: string) => request(h.apiUrl, 'POST', `/api/lists?name=${name}`, { body, contentType: 'text/csv', headers: { 'idempotency-key': key } });
    const first = await upload(csv);
    expect(first.status).toBe(201);
    const again = await upload(csv);
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.json.id).toBe(first.json.id);
    const other = await upload(csv.replace('l0@', 'zz@'));
    expect(other.status).toBe(422);
    const lists = await h.pool.query('SELECT id FROM recipient_lists WHERE name = $1', [name]);
    expect(lists.rowCount).toBe(1);
  });

  it('an expired key is forgotten: the request runs again', async () => {
    const key = randomUUID();
    const name = `idem-expired-${randomUUID()}`;
    const body = { ...content, name, recipients: recipients(1, 'x') };
    expect((await apiCall(h.apiUrl, 'POST', '/api/deliveries', body, withKey(key))).status).toBe(201);
    await h.pool.query(`UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE idempotency_key = $1`, [key]);
    const second = await apiCall(h.apiUrl, 'POST', '/api/deliveries', body, withKey(key));
    expect(second.status).toBe(201);
    expect(second.headers.get('idempotent-replayed')).toBeNull();
    expect(await deliveriesNamed(name)).toHaveLength(2);
  });
});

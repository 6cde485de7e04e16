/**
 * The payload codec and the codec server: AES-256-GCM sealing with key rotation, plain payloads passing through, failure
 * messages sealed too; the codec server's protocol and CORS over HTTP; and, on a real delivery, histories fetched from
 * the Temporal server that hold no recipient address and no SMTP reply in clear text (while the codec server opens
 * them), and logs and histories that hold no secret.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DefaultLogger, Runtime, type LogEntry } from '@temporalio/worker';
import { temporal } from '@temporalio/proto';
import type { Payload } from '@temporalio/common';
import type { History } from '@temporalio/common/lib/proto-utils';
import { decodeOptionalFailureToOptionalError, encodeErrorToFailure, loadDataConverter } from '@temporalio/common/lib/internal-non-workflow';
import { AesGcmPayloadCodec, ENCRYPTED_ENCODING, UnknownPayloadKeyError } from '../runtime/payload-codec';
import { formatPayloadKeys, generatePayloadKey, parsePayloadKeys } from '../runtime/codec-keys';
import { temporalDataConverter } from '../runtime/composition-root';
import { parseSettings } from '../config/settings';
import { loadSecrets, type Secrets } from '../config/secrets';
import { deliveryWorkflowId, recipientWorkflowId } from '../workflows/contract';
import { ALL_SEARCH_ATTRIBUTES } from '../workflows/search-attributes';
import { startHarness, type Harness } from './support/harness';
import { apiCall, authHeaders, request } from './support/http';
import { historyToJsonObject } from './replay/history-json';

const plain = (text: string): Payload => ({ metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from(JSON.stringify(text)) });
const dataText = (p: Payload) => Buffer.from(p.data ?? []).toString('utf8');

describe('payload codec (AES-256-GCM)', () => {
  const k1 = generatePayloadKey('k1');
  const k2 = generatePayloadKey('k2');

  it('seals a payload (metadata included) and opens it again', async () => {
    const codec = new AesGcmPayloadCodec({ currentKeyId: 'k1', keys: [k1] });
    const [sealed] = await codec.encode([plain('someone@example.com')]);
    expect(Buffer.from(sealed.metadata!.encoding!).toString()).toBe(ENCRYPTED_ENCODING);
    expect(Buffer.from(sealed.metadata!['encryption-key-id']!).toString()).toBe('k1');
    expect(Buffer.from(sealed.data!).includes('someone@example.com')).toBe(false);
    expect(Buffer.from(sealed.data!).includes('json/plain')).toBe(false);
    const [opened] = await codec.decode([sealed]);
    expect(dataText(opened)).toBe('"someone@example.com"');
    expect(Buffer.from(opened.metadata!.encoding!).toString()).toBe('json/plain');
    // A fresh IV per payload: the same value never seals to the same bytes.
    const [again] = await codec.encode([plain('someone@example.com')]);
    expect(Buffer.from(again.data!).equals(Buffer.from(sealed.data!))).toBe(false);
  });

  it('rotates by key ID: seals with the current key, opens with any configured key', async () => {
    const before = new AesGcmPayloadCodec({ currentKeyId: 'k1', keys: [k1] });
    const [old] = await before.encode([plain('sealed before the rotation')]);
    const after = new AesGcmPayloadCodec({ currentKeyId: 'k2', keys: [k2, k1] });
    const [fresh] = await after.encode([plain('sealed after the rotation')]);
    expect(Buffer.from(fresh.metadata!['encryption-key-id']!).toString()).toBe('k2');
    expect((await after.decode([old, fresh])).map(dataText)).toEqual(['"sealed before the rotation"', '"sealed after the rotation"']);
    // Once k1 is dropped, what it sealed can no longer be read: the error names the key, never its bytes.
    const dropped = new AesGcmPayloadCodec({ currentKeyId: 'k2', keys: [k2] });
    await expect(dropped.decode([old])).rejects.toBeInstanceOf(UnknownPayloadKeyError);
    await expect(dropped.decode([old])).rejects.toThrow(/"k1"/);
  });

  it('passes plain payloads through on decode (histories recorded before the codec)', async () => {
    const codec = new AesGcmPayloadCodec({ currentKeyId: 'k1', keys: [k1] });
    const p = plain('recorded in clear');
    expect(await codec.decode([p])).toEqual([p]);
  });

  it('refuses a tampered payload or key ID', async () => {
    const codec = new AesGcmPayloadCodec({ currentKeyId: 'k1', keys: [k1, { id: 'k1b', key: k1.key }] });
    const [sealed] = await codec.encode([plain('x')]);
    const flipped = Buffer.from(sealed.data!);
    flipped[20] ^= 1;
    await expect(codec.decode([{ ...sealed, data: flipped }])).rejects.toThrow();
    // The key ID is authenticated: relabelling the payload with another ID holding the same bytes fails too.
    await expect(codec.decode([{ ...sealed, metadata: { ...sealed.metadata, 'encryption-key-id': Buffer.from('k1b') } }])).rejects.toThrow();
  });

  it('seals failure messages (an SMTP reply quoting an address) through the failure converter', async () => {
    const converter = loadDataConverter(temporalDataConverter({ payloadKeys: { currentKeyId: 'k1', keys: [k1] } }));
    const failure = await encodeErrorToFailure(converter, new Error('550 5.1.1 <victim@example.com>: user unknown'));
    const bytes = Buffer.from(temporal.api.failure.v1.Failure.encode(failure).finish());
    expect(bytes.includes('victim@example.com')).toBe(false);
    expect(bytes.includes('user unknown')).toBe(false);
    const error = await decodeOptionalFailureToOptionalError(converter, failure);
    expect(error?.message).toBe('550 5.1.1 <victim@example.com>: user unknown');
  });
});

describe('payload keys configuration', () => {
  const key = randomBytes(32).toString('base64');

  it('PAYLOAD_KEYS and PAYLOAD_KEY_ID: parsed, checked, and never quoted in an error', () => {
    const s = parseSettings({ PAYLOAD_KEYS: `old:${randomBytes(32).toString('base64')},new:${key}`, PAYLOAD_KEY_ID: 'new' });
    expect(s.PAYLOAD_KEYS!.map((k) => k.id)).toEqual(['old', 'new']);
    expect(() => parseSettings({ PAYLOAD_KEYS: `a:${key},b:${key}` })).toThrow(/PAYLOAD_KEY_ID/);
    expect(() => parseSettings({ PAYLOAD_KEYS: `a:${key}`, PAYLOAD_KEY_ID: 'zz' })).toThrow(/not a key ID of PAYLOAD_KEYS/);
    const short = randomBytes(16).toString('base64');
    let message = '';
    try {
      parseSettings({ PAYLOAD_KEYS: `a:${short}` });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/PAYLOAD_KEYS: key "a" must be 32 bytes/);
    expect(message).not.toContain(short);
    expect('problem' in parsePayloadKeys('no-colon')).toBe(true);
  });

  it('the embedded stack generates a payload key once under DATA_DIR and keeps it; configured keys win and stay off disk', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'payload-keys-'));
    try {
      const first = loadSecrets(parseSettings({ DATA_DIR: dir }));
      const second = loadSecrets(parseSettings({ DATA_DIR: dir }));
      expect(second.payloadKeys).toEqual(first.payloadKeys);
      expect(first.payloadKeys.keys[0].key.length).toBe(32);
      expect(fs.statSync(path.join(dir, 'secrets.json')).mode & 0o077).toBe(0);
      const configured = loadSecrets(parseSettings({ DATA_DIR: dir, PAYLOAD_KEYS: `prod-2:${key}` }));
      expect(configured.payloadKeys.currentKeyId).toBe('prod-2');
      expect(fs.readFileSync(path.join(dir, 'secrets.json'), 'utf8')).not.toContain(key);
      expect(formatPayloadKeys(configured.payloadKeys.keys)).toBe(`prod-2:${key}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------------
// On the real stack

const u = randomUUID().slice(0, 8);
/** Secrets unique to this run, so finding one in a log or history cannot be a coincidence. */
const secrets: Secrets = {
  verpSecret: `verp-${randomBytes(16).toString('hex')}`,
  keyEncryptionSecret: `kek-${randomBytes(16).toString('hex')}`,
  payloadKeys: { currentKeyId: `it-${u}`, keys: [generatePayloadKey(`it-${u}`)] },
};
const RELAY_PASSWORD = `relay-pw-${randomBytes(12).toString('hex')}`;
const DOMAIN = `codec-${u}.example`;
const ACCEPTED = `alice-${u}@${DOMAIN}`;
const HARD = `hard-bob-${u}@${DOMAIN}`;
const UI_ORIGIN = 'http://127.0.0.1:18233';

/** Everything the worker, the activities and the API print while the tests run. */
const captured: string[] = [];
const restoreWrites: (() => void)[] = [];
let h: Harness;
let deliveryId = '';
const histories = new Map<string, History>();

function capture(stream: NodeJS.WriteStream) {
  const original = stream.write.bind(stream);
  stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    captured.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return (original as (...a: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof stream.write;
  restoreWrites.push(() => (stream.write = original as typeof stream.write));
}

const safeJson = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? String(x) : x));

/** The workflow IDs a history started as children. */
function childIds(history: History): string[] {
  return (history.events ?? []).map((e) => e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowId).filter((x): x is string => !!x);
}

type JsonPayload = { metadata: Record<string, string>; data?: string };

/**
 * Every payload in a history's JSON form ({metadata: {k: base64}, data: base64}), search attributes apart: a codec
 * never sees those (the server indexes them), so they hold only IDs, statuses and domains (workflows/search-attributes.ts).
 */
function payloadsOf(json: unknown, out: JsonPayload[] = [], searchAttributes: Map<string, string[]> = new Map()) {
  if (Array.isArray(json)) json.forEach((x) => payloadsOf(x, out, searchAttributes));
  else if (json && typeof json === 'object') {
    const o = json as Record<string, unknown>;
    if (o.metadata && typeof o.metadata === 'object' && 'encoding' in (o.metadata as object)) out.push(o as JsonPayload);
    else {
      for (const [k, v] of Object.entries(o)) {
        // The SDK's core writes some marker details itself, not through the codec: a patch marker (patch ID, flag) and
        // a local activity marker's bookkeeping (sequence, attempt, activity type, times). The activity's result is sealed.
        if (k === 'details' && o.markerName === 'core_patch') continue;
        if (k === 'details' && o.markerName === 'core_local_activity') {
          const { data: _bookkeeping, ...rest } = v as Record<string, unknown>;
          payloadsOf(rest, out, searchAttributes);
          continue;
        }
        if (k === 'searchAttributes') {
          for (const [name, p] of Object.entries((v as { indexedFields?: Record<string, JsonPayload> }).indexedFields ?? {})) {
            searchAttributes.set(name, [...(searchAttributes.get(name) ?? []), Buffer.from(p.data ?? '', 'base64').toString('utf8')]);
          }
        } else payloadsOf(v, out, searchAttributes);
      }
    }
  }
  return out;
}

beforeAll(async () => {
  // This file's own worker log, at INFO, kept for the secrets check (the harness leaves an installed runtime alone).
  Runtime.install({ logger: new DefaultLogger('INFO', (e: LogEntry) => captured.push(`${e.level} ${e.message} ${safeJson(e.meta)}`)) });
  capture(process.stdout);
  capture(process.stderr);
  h = await startHarness({
    secrets,
    env: {
      VERP_SECRET: secrets.verpSecret,
      KEY_ENCRYPTION_SECRET: secrets.keyEncryptionSecret,
      PAYLOAD_KEYS: formatPayloadKeys(secrets.payloadKeys.keys),
      PAYLOAD_KEY_ID: secrets.payloadKeys.currentKeyId,
      // Configured like a production relay's credentials: they must not leak even when unused by direct mode.
      SMTP_RELAY_USER: 'relay-user',
      SMTP_RELAY_PASSWORD: RELAY_PASSWORD,
      CODEC_CORS_ORIGINS: UI_ORIGIN,
    },
  });
  const created = await apiCall(h.apiUrl, 'POST', '/api/deliveries', {
    name: `codec ${u}`,
    from: { address: `news@${DOMAIN}`, name: 'Codec Test' },
    subject: 'Hello {{firstName}}',
    text: 'Hello {{firstName}}',
    recipients: [
      { email: ACCEPTED, fields: { firstName: 'Alice' } },
      { email: HARD, fields: { firstName: 'Bob' } },
    ],
    autoConfirm: true,
  });
  expect(created.status, JSON.stringify(created.json)).toBe(201);
  deliveryId = created.json.id;
  await h.waitForPhase(deliveryId, ['completed'], 120_000);
  // The delivery's history, its batches', and its recipients'.
  const queue = [deliveryWorkflowId(deliveryId)];
  while (queue.length) {
    const id = queue.shift()!;
    if (histories.has(id)) continue;
    const history = await h.client.workflow.getHandle(id).fetchHistory();
    histories.set(id, history);
    queue.push(...childIds(history));
  }
}, 180_000);

afterAll(async () => {
  await h?.stop();
  for (const restore of restoreWrites) restore();
});

describe('histories on the Temporal server', () => {
  it('hold no recipient address and no SMTP reply quoting one in clear text', () => {
    expect(histories.size).toBeGreaterThanOrEqual(3); // the delivery, a batch, two recipients
    for (const [id, history] of histories) {
      const bytes = Buffer.from(temporal.api.history.v1.History.encode(history).finish());
      const json = JSON.stringify(historyToJsonObject(history));
      for (const secret of [ACCEPTED, HARD, `<${HARD}>`, 'user unknown']) {
        expect(bytes.includes(secret), `${id}: "${secret}" in the history's bytes`).toBe(false);
        expect(json.includes(secret), `${id}: "${secret}" in the history's JSON`).toBe(false);
      }
      expect(payloadsOf(historyToJsonObject(history)).length, `${id}: payloads`).toBeGreaterThan(0);
      for (const p of payloadsOf(historyToJsonObject(history))) {
        expect(Buffer.from(p.metadata.encoding, 'base64').toString(), `${id}: a payload left unsealed: ${JSON.stringify(p).slice(0, 300)}`).toBe(ENCRYPTED_ENCODING);
      }
    }
  });

  it('search attributes (never sealed) hold only IDs, statuses, reasons and domains', () => {
    const searchAttributes = new Map<string, string[]>();
    for (const history of histories.values()) payloadsOf(historyToJsonObject(history), [], searchAttributes);
    expect([...searchAttributes.keys()].sort()).toEqual(expect.arrayContaining(['DeliveryId']));
    // TemporalChangeVersion: the patch IDs patched() records.
    for (const name of searchAttributes.keys()) expect([...ALL_SEARCH_ATTRIBUTES.map((a) => a.name), 'TemporalChangeVersion']).toContain(name);
    const values = [...searchAttributes.values()].flat().join('\n');
    expect(values).not.toContain('@');
    console.log(`search attributes seen in the histories: ${JSON.stringify(Object.fromEntries([...searchAttributes].map(([k, v]) => [k, [...new Set(v)]])))}`);
  });

  it('decoded through the codec server, show the recipient data and the SMTP reply', async () => {
    const payloads = [...histories.values()].flatMap((hist) => payloadsOf(historyToJsonObject(hist)));
    const r = await request(h.apiUrl, 'POST', '/codec/decode', { body: JSON.stringify({ payloads }), contentType: 'application/json' });
    expect(r.status).toBe(200);
    const decoded = (r.json.payloads as { metadata: Record<string, string>; data: string }[]).map((p) => ({
      encoding: Buffer.from(p.metadata.encoding, 'base64').toString(),
      text: Buffer.from(p.data, 'base64').toString('utf8'),
    }));
    expect(decoded.every((p) => p.encoding !== ENCRYPTED_ENCODING)).toBe(true);
    const all = decoded.map((p) => p.text).join('\n');
    expect(all).toContain(deliveryId);
    expect(all).toContain(HARD);
    expect(all).toMatch(/user unknown/);
  });

  it('the Temporal client of the project reads them decoded (a recipient workflow result)', async () => {
    const page = await apiCall(h.apiUrl, 'GET', `/api/deliveries/${deliveryId}/recipients`);
    expect(page.status).toBe(200);
    const hard = (page.json.recipients as { recipientId: number; address?: string; email?: string }[]).find((r) => JSON.stringify(r).includes(HARD));
    expect(hard, JSON.stringify(page.json)).toBeTruthy();
    const result = await h.client.workflow.getHandle(recipientWorkflowId(deliveryId, hard!.recipientId)).result();
    expect(JSON.stringify(result)).toContain(HARD);
  });
});

describe('codec server over HTTP', () => {
  const body = (payloads: unknown) => ({ body: JSON.stringify({ payloads }), contentType: 'application/json' });
  const asJson = (p: Payload) => ({
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v!).toString('base64')])),
    data: Buffer.from(p.data ?? []).toString('base64'),
  });

  it('encode then decode gives the payloads back; plain payloads pass through decode', async () => {
    const original = [asJson(plain(`round trip ${u}`)), asJson(plain('second'))];
    const enc = await request(h.apiUrl, 'POST', '/codec/encode', body(original));
    expect(enc.status).toBe(200);
    expect(enc.json.payloads).toHaveLength(2);
    expect(Buffer.from(enc.json.payloads[0].metadata.encoding, 'base64').toString()).toBe(ENCRYPTED_ENCODING);
    expect(Buffer.from(enc.json.payloads[0].data, 'base64').includes(`round trip ${u}`)).toBe(false);
    const dec = await request(h.apiUrl, 'POST', '/codec/decode', body([...enc.json.payloads, original[1]]));
    expect(dec.status).toBe(200);
    expect(dec.json.payloads).toEqual([original[0], original[1], original[1]]);
  });

  it('a payload sealed with an unknown key comes back still sealed, the others decoded', async () => {
    const other = new AesGcmPayloadCodec({ currentKeyId: 'elsewhere', keys: [generatePayloadKey('elsewhere')] });
    const [foreign] = await other.encode([plain('not ours')]);
    const dec = await request(h.apiUrl, 'POST', '/codec/decode', body([asJson(foreign), asJson(plain('ours'))]));
    expect(dec.status).toBe(200);
    expect(dec.json.payloads[0]).toEqual(asJson(foreign));
    expect(Buffer.from(dec.json.payloads[1].data, 'base64').toString()).toBe('"ours"');
  });

  it('refuses a malformed body with a 400 naming the field', async () => {
    const r = await request(h.apiUrl, 'POST', '/codec/decode', body([{ metadata: { encoding: 'not base64!' }, data: '' }]));
    expect(r.status).toBe(400);
    expect(r.json.issues[0].path).toBe('payloads.0.metadata.encoding');
    expect((await request(h.apiUrl, 'POST', '/codec/encode', { body: '{"nope": 1}', contentType: 'application/json' })).status).toBe(400);
  });

  it('CORS: the Web UI origin may call it (preflight and POST), another origin may not', async () => {
    const pre = await fetch(`${h.apiUrl}/codec/decode`, {
      method: 'OPTIONS',
      headers: { origin: UI_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-namespace' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/X-Namespace/i);
    const post = await fetch(`${h.apiUrl}/codec/decode`, {
      method: 'POST',
      headers: { origin: UI_ORIGIN, 'content-type': 'application/json', 'x-namespace': 'default', ...authHeaders(h.apiUrl) },
      body: JSON.stringify({ payloads: [] }),
    });
    expect(post.status).toBe(200);
    expect(post.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
    // Without a key the refusal still carries the CORS headers, so that the UI can say why it sees sealed payloads.
    const anonymous = await fetch(`${h.apiUrl}/codec/decode`, {
      method: 'POST',
      headers: { origin: UI_ORIGIN, 'content-type': 'application/json', 'x-namespace': 'default' },
      body: JSON.stringify({ payloads: [] }),
    });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
    const evil = await fetch(`${h.apiUrl}/codec/decode`, { method: 'OPTIONS', headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST' } });
    expect(evil.status).toBe(403);
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('secrets never reach logs or histories', () => {
  it('DKIM private key, SMTP password, VERP/unsubscribe and key-encryption secrets, payload keys: absent from every log line and history', async () => {
    // Something was logged (the worker at INFO, the rules cache), so the check below is not vacuous.
    expect(captured.length).toBeGreaterThan(0);
    const [dkim] = await h.runtime.stores.keys.signingKeys(`${DOMAIN}`);
    expect(dkim?.privateKeyPem).toMatch(/PRIVATE KEY/);
    const pemBody = dkim.privateKeyPem.split('\n').filter((l) => l && !l.startsWith('-----'));
    const payloadKey = secrets.payloadKeys.keys[0].key;
    const needles: Record<string, string[]> = {
      'DKIM private key': [pemBody.join(''), pemBody[Math.floor(pemBody.length / 2)]],
      'SMTP relay password': [RELAY_PASSWORD],
      'VERP/unsubscribe HMAC secret': [secrets.verpSecret],
      'key-encryption secret': [secrets.keyEncryptionSecret],
      'payload key': [payloadKey.toString('base64'), payloadKey.toString('hex'), formatPayloadKeys(secrets.payloadKeys.keys)],
      // Every call of this file sent it (Authorization header): it must not be echoed into a log line.
      'API key': [h.apiKey],
    };
    const logs = captured.join('\n');
    const historyTexts = [...histories.entries()].map(([id, hist]) => ({
      id,
      json: JSON.stringify(historyToJsonObject(hist)),
      bytes: Buffer.from(temporal.api.history.v1.History.encode(hist).finish()),
    }));
    for (const [what, values] of Object.entries(needles)) {
      for (const v of values) {
        expect(logs.includes(v), `${what} in the logs`).toBe(false);
        for (const t of historyTexts) {
          expect(t.json.includes(v) || t.bytes.includes(v), `${what} in the history of ${t.id}`).toBe(false);
          expect(t.bytes.includes(payloadKey), `payload key bytes in the history of ${t.id}`).toBe(false);
        }
      }
    }
  });
});

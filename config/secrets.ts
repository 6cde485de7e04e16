/** Secrets from the configuration, or generated once and kept under DATA_DIR for the embedded stack. */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Settings } from './settings';
import { formatPayloadKeys, generatePayloadKey, parsePayloadKeys, type PayloadKeyRing } from '../runtime/codec-keys';

export interface Secrets {
  verpSecret: string;
  keyEncryptionSecret: string;
  /** The payload codec's keys (PAYLOAD_KEYS) and the one that encrypts (PAYLOAD_KEY_ID). */
  payloadKeys: PayloadKeyRing;
}

/** secrets.json: the payload keys in their PAYLOAD_KEYS text form. */
interface StoredSecrets {
  verpSecret?: string;
  keyEncryptionSecret?: string;
  payloadKeys?: string;
  payloadKeyId?: string;
}

/** The payload keys from the configuration (PAYLOAD_KEY_ID defaults to the only key). */
function configuredPayloadKeys(s: Settings): PayloadKeyRing | undefined {
  if (!s.PAYLOAD_KEYS) return undefined;
  return { keys: s.PAYLOAD_KEYS, currentKeyId: s.PAYLOAD_KEY_ID ?? s.PAYLOAD_KEYS[0].id };
}

function storedPayloadKeys(stored: StoredSecrets): PayloadKeyRing | undefined {
  if (!stored.payloadKeys) return undefined;
  const r = parsePayloadKeys(stored.payloadKeys);
  if ('problem' in r) throw new Error(`secrets.json: payloadKeys: ${r.problem}`);
  return { keys: r.keys, currentKeyId: stored.payloadKeyId ?? r.keys[0].id };
}

export function loadSecrets(s: Settings): Secrets {
  const configuredKeys = configuredPayloadKeys(s);
  if (s.VERP_SECRET && s.KEY_ENCRYPTION_SECRET && configuredKeys) {
    return { verpSecret: s.VERP_SECRET, keyEncryptionSecret: s.KEY_ENCRYPTION_SECRET, payloadKeys: configuredKeys };
  }
  const file = path.join(s.DATA_DIR, 'secrets.json');
  let stored: StoredSecrets = {};
  if (fs.existsSync(file)) stored = JSON.parse(fs.readFileSync(file, 'utf8')) as StoredSecrets;
  // The embedded stack's payload key is generated once and kept: histories sealed with it must stay readable.
  const payloadKeys = configuredKeys ?? storedPayloadKeys(stored) ?? { keys: [generatePayloadKey('local-1')], currentKeyId: 'local-1' };
  const merged: Secrets = {
    verpSecret: s.VERP_SECRET ?? stored.verpSecret ?? randomBytes(32).toString('hex'),
    keyEncryptionSecret: s.KEY_ENCRYPTION_SECRET ?? stored.keyEncryptionSecret ?? randomBytes(32).toString('hex'),
    payloadKeys,
  };
  const toStore: StoredSecrets = {
    verpSecret: merged.verpSecret,
    keyEncryptionSecret: merged.keyEncryptionSecret,
    // Keys given by the configuration are not copied to disk; generated ones are.
    payloadKeys: configuredKeys ? stored.payloadKeys : formatPayloadKeys(payloadKeys.keys),
    payloadKeyId: configuredKeys ? stored.payloadKeyId : payloadKeys.currentKeyId,
  };
  if (
    toStore.verpSecret !== stored.verpSecret ||
    toStore.keyEncryptionSecret !== stored.keyEncryptionSecret ||
    toStore.payloadKeys !== stored.payloadKeys ||
    toStore.payloadKeyId !== stored.payloadKeyId
  ) {
    fs.mkdirSync(s.DATA_DIR, { recursive: true });
    // Written with owner-only permissions: these decrypt the DKIM private keys and the Temporal payloads.
    fs.writeFileSync(file, JSON.stringify(toStore, null, 2), { mode: 0o600 });
  }
  return merged;
}

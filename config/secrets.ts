/** Secrets from the configuration, or generated once and kept under DATA_DIR for the embedded stack. */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Settings } from './settings';

export interface Secrets {
  verpSecret: string;
  keyEncryptionSecret: string;
}

export function loadSecrets(s: Settings): Secrets {
  if (s.VERP_SECRET && s.KEY_ENCRYPTION_SECRET) return { verpSecret: s.VERP_SECRET, keyEncryptionSecret: s.KEY_ENCRYPTION_SECRET };
  const file = path.join(s.DATA_DIR, 'secrets.json');
  let stored: Partial<Secrets> = {};
  if (fs.existsSync(file)) stored = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<Secrets>;
  const merged: Secrets = {
    verpSecret: s.VERP_SECRET ?? stored.verpSecret ?? randomBytes(32).toString('hex'),
    keyEncryptionSecret: s.KEY_ENCRYPTION_SECRET ?? stored.keyEncryptionSecret ?? randomBytes(32).toString('hex'),
  };
  if (merged.verpSecret !== stored.verpSecret || merged.keyEncryptionSecret !== stored.keyEncryptionSecret) {
    fs.mkdirSync(s.DATA_DIR, { recursive: true });
    // Written with owner-only permissions: these decrypt the DKIM private keys.
    fs.writeFileSync(file, JSON.stringify(merged, null, 2), { mode: 0o600 });
  }
  return merged;
}

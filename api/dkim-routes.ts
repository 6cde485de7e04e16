/** DKIM key management: list keys with their DNS records, add (generate or import) a key under a selector, (de)activate one. */
import { Router } from 'express';
import { z } from 'zod';
import type { DkimKeyStore } from '../db/dkim-key-store';
import { NotFoundError, RequestFieldError } from './http-errors';
import { publicKeyB64Of, type DkimAlgorithm } from '../mail/dkim/keys';
import { auditActor } from './auth/access-control';

export const domain = z.string().trim().toLowerCase().regex(/^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$/, 'not a domain name');
export const selector = z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,62})$/i, 'a selector is letters, digits and hyphens');

export const addKeySchema = z
  .object({
    domain,
    selector,
    algorithm: z.enum(['rsa-sha256', 'ed25519-sha256']).default('rsa-sha256'),
    /** Import an existing key (PKCS#8 or PKCS#1 PEM) instead of generating one. */
    privateKeyPem: z.string().max(20_000).optional(),
  })
  .strict();

export const setKeyActiveSchema = z.object({ active: z.boolean() }).strict();

export function createDkimRouter(keys: DkimKeyStore): Router {
  const r = Router();

  r.get('/api/dkim/keys', async (req, res) => {
    const d = req.query.domain === undefined ? undefined : domain.parse(req.query.domain);
    res.json({ keys: await keys.published(d) });
  });

  r.post('/api/dkim/keys', async (req, res) => {
    const input = addKeySchema.parse(req.body);
    const algorithm = input.algorithm as DkimAlgorithm;
    // A selector already in use answers 409 (DkimKeyExistsError, through the API's error middleware).
    if (input.privateKeyPem) {
      let publicKeyB64: string;
      try {
        publicKeyB64 = publicKeyB64Of(input.privateKeyPem, algorithm);
      } catch (e) {
        throw new RequestFieldError(`privateKeyPem is not a usable ${algorithm} private key: ${(e as Error).message}`, 'privateKeyPem');
      }
      await keys.importKey(input.domain, input.selector, algorithm, input.privateKeyPem, publicKeyB64, auditActor(res));
    } else {
      await keys.addKey(input.domain, input.selector, algorithm, true, auditActor(res));
    }
    const published = (await keys.published(input.domain)).find((k) => k.selector === input.selector);
    res.status(201).json(published);
  });

  r.patch('/api/dkim/keys/:domain/:selector', async (req, res) => {
    const d = domain.parse(req.params.domain);
    const s = selector.parse(req.params.selector);
    const { active } = setKeyActiveSchema.parse(req.body);
    if (!(await keys.setActive(d, s, active, auditActor(res)))) throw new NotFoundError(`no key ${s}._domainkey.${d}`);
    res.json((await keys.published(d)).find((k) => k.selector === s));
  });

  return r;
}

/** RFC 8058 one-click unsubscribe: open to mailbox providers (no API key), authenticated by the link's HMAC token. */
import express, { Router } from 'express';
import { z } from 'zod';
import type { DenylistStore } from '../db/denylist-store';
import { verifyUnsubscribeToken } from '../mail/list-unsubscribe/one-click';
import { deliveryIdParam } from './delivery-routes';

export function createUnsubscribeRouter(deps: { denylist: DenylistStore; verpSecret: string }): Router {
  const router = Router();

  // Mailbox providers POST "List-Unsubscribe=One-Click" to the URL from the header.
  router.post('/u/:id/:rid/:token', express.urlencoded({ extended: false }), async (req, res) => {
    const id = deliveryIdParam(req);
    const rid = z.coerce.number().int().positive().parse(req.params.rid);
    const token = String(req.params.token);
    if (!verifyUnsubscribeToken(id, rid, token, deps.verpSecret)) {
      res.status(403).json({ error: 'invalid unsubscribe link' });
      return;
    }
    const { added } = await deps.denylist.unsubscribe(id, rid);
    res.json({ unsubscribed: true, new: added });
  });

  return router;
}

/** HTTP API of stored recipient lists: CSV upload (streamed into COPY), list, read. */
import { Router } from 'express';
import { z } from 'zod';
import type { RecipientListStore } from '../db/recipient-lists';
import { NotFoundError } from './http-errors';

export function createListRouter(lists: RecipientListStore): Router {
  const router = Router();

  // Stored lists: a CSV body (header row; an email column; other columns become personalisation fields), streamed into COPY.
  router.post('/api/lists', async (req, res) => {
    if (!req.is('text/csv')) {
      res.status(415).json({ error: 'send the list as text/csv with a header row' });
      return;
    }
    const name = z.string({ error: 'name is required (?name=...)' }).trim().min(1, 'name is required (?name=...)').max(200).parse(req.query.name);
    const list = await lists.createFromCsv(name, req);
    res.status(201).json(list);
  });

  router.get('/api/lists', async (_req, res) => {
    res.json({ lists: await lists.list() });
  });

  router.get('/api/lists/:id', async (req, res) => {
    const id = z.uuid({ message: 'not a list id' }).parse(req.params.id);
    const list = await lists.get(id);
    if (!list) throw new NotFoundError(`list ${id} does not exist`);
    res.json(list);
  });

  return router;
}

/** HTTP API of stored recipient lists: CSV upload (streamed into COPY), list, read. */
import { Readable } from 'node:stream';
import { Router } from 'express';
import { z } from 'zod';
import { CsvInputError, type RecipientListStore } from '../db/recipient-lists';
import { NotFoundError } from './http-errors';
import { fingerprintStream } from './idempotency';

/**
 * Passes a CSV upload through, refusing it at its first NUL byte (Postgres cannot store NUL in text): the list's
 * transaction rolls back and the caller gets a 400 with the line. A generator, so nothing is read (and no error
 * raised) before the store consumes the stream.
 */
async function* refuseNulBytes(body: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let line = 1;
  for await (const chunk of body) {
    const at = chunk.indexOf(0);
    const upTo = at >= 0 ? at : chunk.length;
    for (let i = 0; i < upTo; i++) if (chunk[i] === 0x0a) line++;
    if (at >= 0) throw new CsvInputError(`the CSV contains a NUL character (line ${line}): a list is text`);
    yield chunk;
  }
}

/** The list's name, given in the query string of the upload (`?name=`): the body is the CSV itself. */
export const listNameQuery = z.string({ error: 'name is required (?name=...)' }).trim().min(1, 'name is required (?name=...)').max(200);
export const listIdParam = z.uuid({ message: 'not a list id' });

export function createListRouter(lists: RecipientListStore): Router {
  const router = Router();

  // Stored lists: a CSV body (header row; an email column; other columns become personalisation fields), streamed into COPY.
  router.post('/api/lists', async (req, res) => {
    if (!req.is('text/csv')) {
      res.status(415).json({ error: 'send the list as text/csv with a header row' });
      return;
    }
    const name = listNameQuery.parse(req.query.name);
    const list = await lists.createFromCsv(name, Readable.from(refuseNulBytes(fingerprintStream(res, req))));
    res.status(201).json(list);
  });

  router.get('/api/lists', async (_req, res) => {
    res.json({ lists: await lists.list() });
  });

  router.get('/api/lists/:id', async (req, res) => {
    const id = listIdParam.parse(req.params.id);
    const list = await lists.get(id);
    if (!list) throw new NotFoundError(`list ${id} does not exist`);
    // The first member, for a preview of the message it would get (the dashboard's New delivery form).
    res.json({ ...list, sample: await lists.firstMember(id) });
  });

  return router;
}

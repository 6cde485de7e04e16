/** The one error middleware of the API: every refusal is a 4xx naming the field or the reason; only the unexpected is a 500. */
import type { NextFunction, Request, Response } from 'express';
import { ZodError } from 'zod';
import { CsvInputError } from '../db/recipient-lists';
import { DkimKeyExistsError } from '../db/dkim-key-store';
import { InvalidQualificationRuleError } from '../domain/bounce-rules/rule-validation';
import { InvalidDeliveryFieldError } from '../deliveries/create-delivery';
import { ConflictError, NotFoundError, RequestFieldError } from './http-errors';

export function apiErrorMiddleware(err: unknown, _req: Request, res: Response, _next: NextFunction): void {
  if (err instanceof ZodError) {
    res.status(400).json({ error: 'invalid request', issues: err.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) });
    return;
  }
  if (err instanceof RequestFieldError) {
    res.status(400).json({ error: 'invalid request', issues: [{ path: err.path, message: err.message }] });
    return;
  }
  if (err instanceof InvalidDeliveryFieldError) {
    res.status(400).json({ error: 'invalid request', issues: err.issues });
    return;
  }
  if (err instanceof InvalidQualificationRuleError) {
    res.status(400).json({ error: err.message, issues: err.issues });
    return;
  }
  if (err instanceof DkimKeyExistsError) {
    res.status(409).json({ error: err.message });
    return;
  }
  if (err instanceof NotFoundError || err instanceof ConflictError || err instanceof CsvInputError) {
    res.status(err.status).json({ error: err.message });
    return;
  }
  // body-parser's own errors
  const e = err as { type?: string; message?: string };
  if (e.type === 'entity.parse.failed') {
    res.status(400).json({ error: `body is not valid JSON: ${e.message}` });
    return;
  }
  if (e.type === 'entity.too.large') {
    res.status(413).json({ error: 'body too large' });
    return;
  }
  console.error(JSON.stringify({ msg: 'api error', error: String((err as Error)?.stack ?? err) }));
  res.status(500).json({ error: 'internal error' });
}

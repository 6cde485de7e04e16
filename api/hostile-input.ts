/**
 * Refuses a NUL character anywhere in a request's text: path, query string, JSON body (keys and values). Postgres
 * cannot store NUL in text, so without this a NUL reached the database and came back as a 500; here it is a 400 that
 * names where it was. (CSV uploads are checked as they stream: api/list-routes.ts.)
 */
import type { NextFunction, Request, Response } from 'express';
import { RequestFieldError } from './http-errors';

const NUL = '\u0000';

/** The JSON path of the first NUL in a parsed body or query (a key or a value), or null. */
export function findNul(value: unknown, path: string[] = []): string | null {
  if (typeof value === 'string') return value.includes(NUL) ? path.join('.') || '(body)' : null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findNul(value[i], [...path, String(i)]);
      if (found !== null) return found;
    }
    return null;
  }
  if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k.includes(NUL)) return [...path, k.replaceAll(NUL, '\\u0000')].join('.');
      const found = findNul(v, [...path, k]);
      if (found !== null) return found;
    }
  }
  return null;
}

export function refuseNulCharacters(req: Request, _res: Response, next: NextFunction): void {
  let path: string;
  try {
    path = decodeURIComponent(req.path);
  } catch {
    throw new RequestFieldError('the request path is not valid percent-encoding', 'path');
  }
  if (path.includes(NUL)) throw new RequestFieldError('the request path must not contain a NUL character (%00)', 'path');
  const inQuery = findNul(req.query);
  if (inQuery !== null) throw new RequestFieldError(`query parameter ${inQuery} must not contain a NUL character (%00)`, inQuery);
  if (req.body !== undefined && typeof req.body === 'object') {
    const inBody = findNul(req.body);
    if (inBody !== null) throw new RequestFieldError(`${inBody} must not contain a NUL character (\\u0000)`, inBody);
  }
  next();
}

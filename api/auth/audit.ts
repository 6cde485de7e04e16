/** Audit entries for changes made outside Postgres (Temporal updates, schedules), written right after they succeeded. */
import type { Response } from 'express';
import type { AuditEntryInput, AuditLogStore } from '../../db/audit-log-store';
import { auditActor } from './access-control';

export type AuditRecorder = Pick<AuditLogStore, 'record'>;

/**
 * Records a change that already happened, with the request's key as actor. The change stands whatever happens here:
 * should the write fail (Postgres gone right after Temporal answered), the API log keeps the whole entry in a line
 * "audit entry not written" so that it can be re-entered, and the caller still gets the change's answer.
 */
export async function recordAfterChange(audit: AuditRecorder, res: Response, e: Omit<AuditEntryInput, 'actor'>): Promise<void> {
  const entry: AuditEntryInput = { ...e, actor: auditActor(res) };
  try {
    await audit.record(entry);
  } catch (err) {
    console.error(JSON.stringify({ msg: 'audit entry not written', entry, error: (err as Error).message }));
  }
}

/** Deliveries table: creation (with their recipients, atomically), reads and state changes. */
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { copyRecipients, type RecipientInput } from './recipient-loader';
import { copyListIntoDelivery } from './recipient-lists';
import { inTransaction } from './transaction';
import { likeLiteral, SqlConditions } from './sql-conditions';
import type { DeliveryPhase } from '../domain/delivery-lifecycle';
import { addressDomain } from '../domain/email-address';
import { prepared } from './prepared-statements';

/** Where a delivery's population comes from: inline rows, or a stored list (copied at creation). */
export type Audience = { recipients: Iterable<RecipientInput> } | { listId: string };

export interface NewDelivery {
  /** The id to give it (an idempotent request's stable resource id); a new UUID when absent. */
  id?: string;
  name: string;
  from: { address: string; name?: string };
  replyTo?: string;
  subject: string;
  html?: string;
  text?: string;
  validitySeconds: number;
  autoConfirm: boolean;
  contactDate?: Date;
  options?: Record<string, unknown>;
}

export interface DeliveryRow {
  id: string;
  name: string;
  fromAddress: string;
  fromName: string | null;
  fromDomain: string;
  replyTo: string | null;
  subject: string;
  html: string | null;
  text: string | null;
  state: DeliveryPhase;
  autoConfirm: boolean;
  validitySeconds: number;
  contactDate: Date | null;
  options: Record<string, unknown>;
  analysis: unknown;
  createdAt: Date;
  confirmedAt: Date | null;
  sendingStartedAt: Date | null;
  completedAt: Date | null;
  /** Why it is paused ({ by, reason, at, safetyStop? }), while it is. */
  pauseReason: Record<string, unknown> | null;
}

/** What the deliveries list can be narrowed to (GET /api/deliveries); every filter given applies. */
export interface DeliveryListFilter {
  /** Any of these phases (as last recorded in the table). */
  states?: DeliveryPhase[];
  /** Created at or after (an ISO instant, read by Postgres to the microsecond). */
  createdFrom?: string;
  /** Created strictly before (an ISO instant). */
  createdBefore?: string;
  /** Text in the name or the subject, case-insensitive. */
  text?: string;
}

const DELIVERY_COLUMNS = `id, name, from_address AS "fromAddress", from_name AS "fromName", from_domain AS "fromDomain",
  reply_to AS "replyTo", subject, html, text_body AS "text", state, auto_confirm AS "autoConfirm",
  validity_seconds AS "validitySeconds", contact_date AS "contactDate", options, analysis, created_at AS "createdAt",
  confirmed_at AS "confirmedAt", sending_started_at AS "sendingStartedAt", completed_at AS "completedAt",
  pause_reason AS "pauseReason"`;
const SELECT_DELIVERY = `SELECT ${DELIVERY_COLUMNS} FROM deliveries`;
/** The list leaves out the content: a page of 20 campaigns would otherwise read every one's HTML to throw it away. */
const LISTED_COLUMNS = DELIVERY_COLUMNS.replace('html, text_body AS "text", ', '');
export type ListedDelivery = Omit<DeliveryRow, 'html' | 'text'>;

export class DeliveryStore {
  constructor(private readonly pool: Pool) {}

  /** Writes the delivery and all its recipients in one transaction: either everything is there or nothing is. */
  async create(input: NewDelivery, audience: Audience): Promise<{ id: string; recipientCount: number }> {
    const id = input.id ?? randomUUID();
    const recipientCount = await inTransaction(this.pool, async (client) => {
      await client.query(
        `INSERT INTO deliveries (id, name, from_address, from_name, from_domain, reply_to, subject, html, text_body,
           auto_confirm, validity_seconds, contact_date, options, list_id)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)`,
        [
          id,
          input.name,
          input.from.address,
          input.from.name ?? null,
          addressDomain(input.from.address),
          input.replyTo ?? null,
          input.subject,
          input.html ?? null,
          input.text ?? null,
          input.autoConfirm,
          input.validitySeconds,
          input.contactDate ?? null,
          JSON.stringify(input.options ?? {}),
          'listId' in audience ? audience.listId : null,
        ],
      );
      const count =
        'listId' in audience ? await copyListIntoDelivery(client, audience.listId, id) : await copyRecipients(client, id, audience.recipients);
      await client.query('UPDATE deliveries SET recipients_loaded_at = now() WHERE id = $1', [id]);
      return count;
    });
    return { id, recipientCount };
  }

  /** How many recipients a stored delivery has (its population, excluded ones included). */
  async recipientCount(id: string): Promise<number> {
    const r = await this.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM delivery_recipients WHERE delivery_id = $1', [id]);
    return r.rows[0].n;
  }

  /** Removes a delivery whose workflow could not be started, so no half-created delivery remains. */
  async delete(id: string): Promise<void> {
    await this.pool.query('DELETE FROM deliveries WHERE id = $1', [id]);
  }

  async get(id: string): Promise<DeliveryRow | null> {
    const r = await this.pool.query<DeliveryRow>(`${SELECT_DELIVERY} WHERE id = $1`, [id]);
    return r.rows[0] ?? null;
  }

  /**
   * A page of deliveries, newest first, narrowed by `filter`, after the position `before` (keyset on
   * (created_at, id), deliveries_created_at_id_idx). `next` is where the following page starts, null on the last one:
   * created_at as text to the microsecond, since a JavaScript Date would round it to the millisecond and a page
   * starting there could skip deliveries created within that millisecond.
   */
  async list(opts: { limit: number; before?: { at: string; id?: string } } & DeliveryListFilter): Promise<{ rows: ListedDelivery[]; next: { before: string; beforeId: string } | null }> {
    const c = new SqlConditions([opts.limit + 1]);
    if (opts.before?.id) c.add((at, id) => `(created_at, id) < (${at}::timestamptz, ${id}::uuid)`, opts.before.at, opts.before.id);
    else if (opts.before) c.add((at) => `created_at < ${at}::timestamptz`, opts.before.at);
    if (opts.states?.length) c.add((p) => `state = ANY(${p}::text[])`, opts.states);
    if (opts.createdFrom) c.add((p) => `created_at >= ${p}::timestamptz`, opts.createdFrom);
    if (opts.createdBefore) c.add((p) => `created_at < ${p}::timestamptz`, opts.createdBefore);
    if (opts.text) c.add((p) => `(name ILIKE ${p} OR subject ILIKE ${p})`, `%${likeLiteral(opts.text)}%`);
    // Prepared: its filters combine into a few dozen texts at most.
    const r = await this.pool.query<ListedDelivery & { cursorAt: string }>(
      prepared(
        `SELECT ${LISTED_COLUMNS}, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS "cursorAt"
       FROM deliveries ${c.conditions.length ? `WHERE ${c.conditions.join(' AND ')}` : ''}
       ORDER BY created_at DESC, id DESC LIMIT $1`,
        c.params,
      ),
    );
    const more = r.rows.length > opts.limit;
    const rows = r.rows.slice(0, opts.limit).map(({ cursorAt: _c, ...row }) => row);
    const last = r.rows[opts.limit - 1];
    return { rows, next: more ? { before: last.cursorAt, beforeId: last.id } : null };
  }

  /** Content and option edits of a draft (the workflow guarantees it is not confirmed yet). */
  async updateDraft(
    id: string,
    c: { name?: string; subject?: string; html?: string | null; text?: string | null; validitySeconds?: number; waves?: unknown; localSendTime?: unknown },
  ): Promise<void> {
    const options: Record<string, unknown> = {};
    if (c.waves !== undefined) options.waves = c.waves;
    await this.pool.query(
      `UPDATE deliveries SET
         name = COALESCE($2, name), subject = COALESCE($3, subject),
         html = CASE WHEN $4::boolean THEN $5 ELSE html END,
         text_body = CASE WHEN $6::boolean THEN $7 ELSE text_body END,
         validity_seconds = COALESCE($8, validity_seconds),
         options = (options || $9::jsonb) - (CASE WHEN $10::boolean THEN 'localSendTime' ELSE '' END)
           || (CASE WHEN $11::jsonb IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('localSendTime', $11::jsonb) END)
       WHERE id = $1`,
      [
        id,
        c.name ?? null,
        c.subject ?? null,
        c.html !== undefined,
        c.html ?? null,
        c.text !== undefined,
        c.text ?? null,
        c.validitySeconds ?? null,
        JSON.stringify(options),
        c.localSendTime === null,
        c.localSendTime ? JSON.stringify(c.localSendTime) : null,
      ],
    );
  }

  /** The delivery's phase as last recorded (null when there is no such delivery): what the send activity checks for a pause. */
  async phase(id: string): Promise<DeliveryPhase | null> {
    const r = await this.pool.query<{ state: DeliveryPhase }>('SELECT state FROM deliveries WHERE id = $1', [id]);
    return r.rows[0]?.state ?? null;
  }

  /** Stores the full analysis report shown by the API (the workflow keeps only its summary). */
  async saveAnalysis(id: string, report: Record<string, unknown>): Promise<void> {
    await this.pool.query('UPDATE deliveries SET analysis = $2 WHERE id = $1', [id, JSON.stringify(report)]);
  }

  async setContactDate(id: string, contactDate: Date | null): Promise<void> {
    await this.pool.query('UPDATE deliveries SET contact_date = $2 WHERE id = $1', [id, contactDate]);
  }

  /**
   * Records the phase, and why the delivery is paused (cleared on any other phase). Resuming a paused delivery also
   * restarts the safety stop's window: the attempts before the pause were judged already.
   */
  async setState(id: string, state: DeliveryPhase, pauseReason: { atMs: number } | null = null): Promise<void> {
    const stamp =
      state === 'sending'
        ? ', sending_started_at = COALESCE(sending_started_at, now())'
        : state === 'completed' || state === 'cancelled'
          ? ', completed_at = COALESCE(completed_at, now())'
          : state === 'scheduled'
            ? ', confirmed_at = COALESCE(confirmed_at, now())'
            : '';
    const reason = state === 'paused' && pauseReason ? { ...pauseReason, at: new Date(pauseReason.atMs).toISOString() } : null;
    await this.pool.query(
      `UPDATE deliveries SET state = $2${stamp}, pause_reason = $3::jsonb,
         safety_window_from = CASE WHEN state = 'paused' AND $2 = 'sending' THEN now() ELSE safety_window_from END
       WHERE id = $1`,
      [id, state, reason === null ? null : JSON.stringify(reason)],
    );
  }
}

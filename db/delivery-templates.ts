/** Delivery templates of recurring deliveries, and the deliveries their runs created (options.recurring). */
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';

/** The schedule as the caller gave it (kept for display; Temporal holds the schedule itself). */
export interface RecurringScheduleSpec {
  cron?: string;
  intervalSeconds?: number;
  timeZone?: string;
  catchupWindowSeconds: number;
}

export interface DeliveryTemplateRow {
  id: string;
  name: string;
  /** The create-delivery JSON (validated, defaults filled in), audience a listId. */
  body: Record<string, unknown>;
  schedule: RecurringScheduleSpec;
  createdAt: Date;
}

/** What every delivery created by a run carries in its options, and what makes creation idempotent. */
export interface RecurringMarker {
  templateId: string;
  /** ID of the schedule's workflow execution that created the delivery: unique per run. */
  runKey: string;
}

export interface TemplateDeliveryRow {
  id: string;
  name: string;
  state: string;
  runKey: string;
  createdAt: Date;
  completedAt: Date | null;
}

const SELECT_TEMPLATE = `SELECT id, name, body, schedule, created_at AS "createdAt" FROM delivery_templates`;

export class DeliveryTemplateStore {
  constructor(private readonly pool: Pool) {}

  async create(input: { name: string; body: Record<string, unknown>; schedule: RecurringScheduleSpec }): Promise<DeliveryTemplateRow> {
    const id = randomUUID();
    const r = await this.pool.query<DeliveryTemplateRow>(
      `INSERT INTO delivery_templates (id, name, body, schedule) VALUES ($1, $2, $3, $4)
       RETURNING id, name, body, schedule, created_at AS "createdAt"`,
      [id, input.name, JSON.stringify(input.body), JSON.stringify(input.schedule)],
    );
    return r.rows[0];
  }

  async get(id: string): Promise<DeliveryTemplateRow | null> {
    const r = await this.pool.query<DeliveryTemplateRow>(`${SELECT_TEMPLATE} WHERE id = $1`, [id]);
    return r.rows[0] ?? null;
  }

  async list(limit: number): Promise<DeliveryTemplateRow[]> {
    const r = await this.pool.query<DeliveryTemplateRow>(`${SELECT_TEMPLATE} ORDER BY created_at DESC LIMIT $1`, [limit]);
    return r.rows;
  }

  /** Deliveries already created from the template stay: they are ordinary deliveries with their own log. */
  async delete(id: string): Promise<boolean> {
    const r = await this.pool.query('DELETE FROM delivery_templates WHERE id = $1', [id]);
    return (r.rowCount ?? 0) > 0;
  }

  /** The delivery a run created, if it did (the unique index on the run key guarantees at most one). */
  async deliveryOfRun(runKey: string): Promise<{ id: string; validitySeconds: number; recipientCount: number } | null> {
    const r = await this.pool.query<{ id: string; validitySeconds: number; recipientCount: number }>(
      `SELECT d.id, d.validity_seconds AS "validitySeconds",
              (SELECT count(*)::int FROM delivery_recipients r WHERE r.delivery_id = d.id) AS "recipientCount"
         FROM deliveries d WHERE d.options ? 'recurring' AND d.options #>> '{recurring,runKey}' = $1`,
      [runKey],
    );
    return r.rows[0] ?? null;
  }

  /** Latest deliveries created by the template's runs, newest first. */
  async deliveries(templateId: string, limit = 20): Promise<TemplateDeliveryRow[]> {
    const r = await this.pool.query<TemplateDeliveryRow>(
      `SELECT id, name, state, options #>> '{recurring,runKey}' AS "runKey", created_at AS "createdAt", completed_at AS "completedAt"
         FROM deliveries
        WHERE options ? 'recurring' AND options #>> '{recurring,templateId}' = $1
        ORDER BY created_at DESC LIMIT $2`,
      [templateId, limit],
    );
    return r.rows;
  }

  async countDeliveries(templateId: string): Promise<number> {
    const r = await this.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM deliveries WHERE options ? 'recurring' AND options #>> '{recurring,templateId}' = $1`,
      [templateId],
    );
    return r.rows[0].n;
  }
}

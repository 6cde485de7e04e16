/**
 * What the fault suite checks about a delivery once it has completed after a fault: every recipient final, the
 * delivery log and the workflows agreeing, what reached the sandbox MX (nothing lost, each duplicate of the documented
 * kind), and how long the delivery took to get going again. See docs/fault-suite.md.
 */
import { WorkflowNotFoundError } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { DeliveryLog } from '../../db/delivery-log';
import type { DeliveryKpis } from '../../domain/efs-status';
import { deliveryKpisQuery, deliveryStateQuery, deliveryWorkflowId, recipientWorkflowId } from '../../workflows/contract';
import { DeliveryIdAttribute, EfsStatusAttribute } from '../../workflows/search-attributes';
import type { ProcessStack } from '../support/process-stack';

export type Kind = 'ok' | 'grey' | 'fail1' | 'hard';
export interface Person {
  email: string;
  kind: Kind;
}

/**
 * Mostly accepting addresses; some greylisted and fail-once ones (a soft bounce, then accepted), a few hard bounces
 * (sandbox MX behaviours by local part: docs/sandbox-mx.md). `tag` keeps the addresses of different deliveries apart.
 */
export function population(n: number, domain: string, tag = ''): Person[] {
  return Array.from({ length: n }, (_, i) => {
    if (i % 50 === 7) return { email: `grey-${tag}${i}@${domain}`, kind: 'grey' as const };
    if (i % 50 === 23) return { email: `fail1-${tag}${i}@${domain}`, kind: 'fail1' as const };
    if (i % 120 === 41) return { email: `hard-${tag}${i}@${domain}`, kind: 'hard' as const };
    return { email: `r${tag}${i}@${domain}`, kind: 'ok' as const };
  });
}

export function deliveryBody(name: string, people: Person[]) {
  return {
    name,
    from: { address: 'news@fault-brand.example', name: 'Fault suite' },
    subject: 'Hello {{n}}',
    text: 'Message number {{n}} of the fault suite',
    recipients: people.map((p, i) => ({ email: p.email, fields: { n: String(i) } })),
    autoConfirm: true,
  };
}

/** JSON with keys sorted at every level: two KPI objects compare equal whatever order their maps were filled in. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** When a fault began and ended (the component back, or the outage over). */
export interface FaultWindow {
  startedAt: number;
  endedAt: number;
}

export interface Duplicate {
  address: string;
  recipientId: number;
  copies: number;
  /** Explained: a copy the MX accepted before the fault ended whose attempt the log never recorded, then the retry's copy. */
  documented: boolean;
  why: string;
}

export interface DeliveryCheck {
  deliveryId: string;
  recipients: number;
  recipientIds: number[];
  byStatus: Record<string, number>;
  /** Recipients not `sent` or `failed`. */
  notFinal: number;
  /** Recipients that should have been delivered and have no copy at the MX, or are not `sent`. */
  lost: string[];
  /** Copies at the MX for a recipient the log says failed. */
  unexpectedAtMx: string[];
  duplicates: Duplicate[];
  /** Attempts still `in_progress`, sent recipients without exactly one `accepted` attempt. */
  logProblems: string[];
  /** Differences between the delivery log and the workflows (queries, and each recipient's workflow). */
  workflowMismatches: string[];
  kpis: DeliveryKpis;
  /** Fault end → first message accepted from an attempt started after it (null: nothing was left to send). */
  recoverMs: number | null;
  /** Fault end → the delivery completed. */
  completedAfterMs: number;
}

/** Waits for the delivery workflow to report `completed` (queries fail while Temporal is down: keep asking). */
export async function waitForCompletion(stack: ProcessStack, deliveryId: string, timeoutMs: number): Promise<void> {
  const handle = stack.client.workflow.getHandle(deliveryWorkflowId(deliveryId));
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const view = await handle.query(deliveryStateQuery);
      last = `${view.phase}, KPIs ${JSON.stringify(view.kpis)}`;
      if (view.phase === 'completed') return;
      if (view.phase === 'cancelled' || view.phase === 'analysis_failed') throw new Error(`delivery ${deliveryId} ended ${view.phase}`);
    } catch (e) {
      if ((e as Error).message.includes('ended')) throw e;
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  const diagnosis = await diagnoseNotFinal(stack, deliveryId).catch((e) => `(no diagnosis: ${(e as Error).message})`);
  throw new Error(`delivery ${deliveryId} did not complete within ${timeoutMs / 1000} s; last: ${last}\n${diagnosis}\n${stack.logs(20)}`);
}

/**
 * Where the recipients that are not final stand (at most five): their log row and attempts, whether their workflow
 * exists, what it is waiting for (pending activities with their attempt and last failure, the last events of its
 * history), and the state and leases of the receiving sites. Printed when a delivery does not complete, so that a
 * rare hang seen once in CI says where it hung.
 */
async function diagnoseNotFinal(stack: ProcessStack, deliveryId: string): Promise<string> {
  const out: string[] = [];
  const stuck = (
    await stack.pool.query<{ recipient_id: number; status: string; attempts: number }>(
      `SELECT r.recipient_id, r.status, (SELECT count(*)::int FROM send_attempts a WHERE a.delivery_id = r.delivery_id AND a.recipient_id = r.recipient_id) AS attempts
       FROM delivery_recipients r WHERE r.delivery_id = $1 AND r.status NOT IN ('sent', 'failed', 'excluded') ORDER BY r.recipient_id LIMIT 5`,
      [deliveryId],
    )
  ).rows;
  out.push(`not final (first ${stuck.length}): ${JSON.stringify(stuck)}`);
  for (const r of stuck) {
    const attempts = (await stack.pool.query(`SELECT attempt, outcome, smtp_code, reply_text, started_at, finished_at FROM send_attempts WHERE delivery_id = $1 AND recipient_id = $2 ORDER BY attempt`, [deliveryId, r.recipient_id])).rows;
    out.push(`recipient ${r.recipient_id} attempts: ${JSON.stringify(attempts)}`);
    const handle = stack.client.workflow.getHandle(recipientWorkflowId(deliveryId, r.recipient_id));
    try {
      const d = await handle.describe();
      const pending = (d.raw.pendingActivities ?? []).map((a) => ({
        type: a.activityType?.name,
        state: a.state,
        attempt: a.attempt,
        lastFailure: a.lastFailure?.message,
        nextAttemptAt: a.nextAttemptScheduleTime?.seconds?.toString(),
        lastHeartbeatAt: a.lastHeartbeatTime?.seconds?.toString(),
      }));
      out.push(`recipient ${r.recipient_id} workflow: ${d.status.name}, pending activities ${JSON.stringify(pending)}`);
      const events = ((await handle.fetchHistory()).events ?? []).map((e) => `${e.eventId} ${temporal.api.enums.v1.EventType[e.eventType ?? 0] ?? e.eventType}`);
      out.push(`recipient ${r.recipient_id} last events: ${events.slice(-12).join(', ')}`);
    } catch (e) {
      out.push(`recipient ${r.recipient_id} workflow: ${e instanceof WorkflowNotFoundError ? 'does not exist' : (e as Error).message}`);
    }
  }
  const sites = (await stack.pool.query(`SELECT * FROM mx_sites`)).rows;
  const leases = (await stack.pool.query(`SELECT site, slot, holder, expires_at > clock_timestamp() AS live FROM mx_site_leases ORDER BY site, slot`)).rows;
  out.push(`mx_sites: ${JSON.stringify(sites)}`);
  out.push(`mx_site_leases: ${JSON.stringify(leases)}`);
  return out.join('\n');
}

/** Every recipient workflow of the delivery as the server's visibility store lists them, with its EfsStatus attribute. */
async function listedRecipientWorkflows(stack: ProcessStack, deliveryId: string): Promise<Map<string, { status: string; efs: string | undefined }>> {
  const prefix = `${deliveryWorkflowId(deliveryId)}-r-`;
  const listed = new Map<string, { status: string; efs: string | undefined }>();
  for await (const wf of stack.client.workflow.list({ query: `${DeliveryIdAttribute.name}="${deliveryId}"` })) {
    if (!wf.workflowId.startsWith(prefix)) continue;
    listed.set(wf.workflowId, { status: wf.status.name, efs: wf.typedSearchAttributes.get(EfsStatusAttribute) });
  }
  return listed;
}

/** How long the delivery's row may lag its workflow's phase (the activity that records it, on a recovering stack). */
const ROW_FOLLOWS_WITHIN_MS = 15_000;

export async function checkDelivery(stack: ProcessStack, deliveryId: string, people: Person[], fault: FaultWindow): Promise<DeliveryCheck> {
  const { pool, mx } = stack;
  const log = new DeliveryLog(pool);
  const rows = (
    await pool.query<{ recipient_id: number; address: string; status: string }>(
      'SELECT recipient_id, address, status FROM delivery_recipients WHERE delivery_id = $1 ORDER BY recipient_id',
      [deliveryId],
    )
  ).rows;
  const kindOf = new Map(people.map((p) => [p.email.toLowerCase(), p.kind]));
  const byStatus: Record<string, number> = {};
  for (const r of rows) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;

  // --- the delivery log: no attempt left in progress, one accepted attempt per sent recipient and none for others ---
  const attempts = (
    await pool.query<{ recipient_id: number; attempt: number; outcome: string; started_at: Date; finished_at: Date | null; message_id: string | null }>(
      'SELECT recipient_id, attempt, outcome, started_at, finished_at, message_id FROM send_attempts WHERE delivery_id = $1',
      [deliveryId],
    )
  ).rows;
  const logProblems: string[] = [];
  const acceptedAttempts = new Map<number, (typeof attempts)[number][]>();
  for (const a of attempts) {
    if (a.outcome === 'in_progress') logProblems.push(`recipient ${a.recipient_id} attempt ${a.attempt} still in progress`);
    if (a.outcome === 'accepted') acceptedAttempts.set(a.recipient_id, [...(acceptedAttempts.get(a.recipient_id) ?? []), a]);
  }
  for (const r of rows) {
    const n = acceptedAttempts.get(r.recipient_id)?.length ?? 0;
    if (r.status === 'sent' && n !== 1) logProblems.push(`recipient ${r.recipient_id} is sent with ${n} accepted attempts`);
    if (r.status !== 'sent' && n !== 0) logProblems.push(`recipient ${r.recipient_id} is ${r.status} with ${n} accepted attempts`);
  }

  // --- the sandbox MX: nothing lost, nothing for failed recipients, each duplicate explained ---
  const counts = mx.countsByRecipient();
  const lost: string[] = [];
  const unexpectedAtMx: string[] = [];
  for (const r of rows) {
    const address = r.address.toLowerCase();
    const copies = counts.get(address) ?? 0;
    const shouldArrive = kindOf.get(address) !== 'hard';
    if (shouldArrive && (copies === 0 || r.status !== 'sent')) lost.push(`${address} (${r.status}, ${copies} copies at the MX)`);
    if (!shouldArrive && (copies > 0 || r.status !== 'failed')) unexpectedAtMx.push(`${address} (${r.status}, ${copies} copies at the MX)`);
  }
  const duplicates: Duplicate[] = [];
  for (const r of rows) {
    const address = r.address.toLowerCase();
    const copies = counts.get(address) ?? 0;
    if (copies < 2) continue;
    const received = mx.acceptedFor(address).sort((a, b) => a.receivedAt.getTime() - b.receivedAt.getTime());
    const firstAt = received[0]!.receivedAt.getTime();
    const messageIds = new Set(received.map((m) => m.messageId));
    const recorded = acceptedAttempts.get(r.recipient_id) ?? [];
    // The attempt the log recorded as accepted was (re)started after the MX already held a copy: that copy's own
    // attempt was never recorded. beginAttempt restamps started_at when it runs an attempt left in progress again.
    const unrecordedFirstCopy = recorded.length === 1 && recorded[0]!.started_at.getTime() > firstAt;
    const duringFault = firstAt <= fault.endedAt;
    const documented = copies === 2 && messageIds.size === 1 && unrecordedFirstCopy && duringFault;
    duplicates.push({
      address,
      recipientId: r.recipient_id,
      copies,
      documented,
      why:
        `${copies} copies, Message-ID ${[...messageIds].join(', ')}; first copy at ${new Date(firstAt).toISOString()} ` +
        `(fault ${new Date(fault.startedAt).toISOString()} → ${new Date(fault.endedAt).toISOString()}); accepted attempts in the log: ` +
        JSON.stringify(recorded.map((a) => ({ attempt: a.attempt, startedAt: a.started_at, finishedAt: a.finished_at }))),
    });
  }

  // --- the log against the workflows: the delivery's queries, and each recipient workflow's EfsStatus ---
  const workflowMismatches: string[] = [];
  const kpis = await log.kpis(deliveryId);
  const handle = stack.client.workflow.getHandle(deliveryWorkflowId(deliveryId));
  const [queried, state] = await Promise.all([handle.query(deliveryKpisQuery), handle.query(deliveryStateQuery)]);
  if (canonical(queried) !== canonical(kpis)) workflowMismatches.push(`kpis query ${JSON.stringify(queried)} ≠ log ${JSON.stringify(kpis)}`);
  if (canonical(state.kpis) !== canonical(kpis)) workflowMismatches.push(`deliveryState query KPIs ${JSON.stringify(state.kpis)} ≠ log ${JSON.stringify(kpis)}`);
  if (state.phase !== 'completed') workflowMismatches.push(`deliveryState phase ${state.phase}`);
  // The workflow shows its new phase at once and records it in the row by the activity it starts then
  // (workflows/delivery-run.ts, enter): a query can see 'completed' a moment before the row does. The row must follow
  // within seconds; one that stays behind is a mismatch.
  const readRow = async () => (await pool.query<{ state: string; completed_at: Date | null }>('SELECT state, completed_at FROM deliveries WHERE id = $1', [deliveryId])).rows[0];
  let stored = await readRow();
  for (const until = Date.now() + ROW_FOLLOWS_WITHIN_MS; stored?.state !== 'completed' && Date.now() < until; stored = await readRow()) await new Promise((r) => setTimeout(r, 100));
  if (stored?.state !== 'completed') workflowMismatches.push(`delivery row state ${stored?.state} ${ROW_FOLLOWS_WITHIN_MS / 1000} s after the workflow's phase was completed`);
  // Visibility is updated asynchronously after a workflow closes: ask again for a while before calling it a mismatch.
  let recipientMismatches: string[] = [];
  for (let tries = 0; tries < 30; tries++) {
    const listed = await listedRecipientWorkflows(stack, deliveryId);
    recipientMismatches = [];
    for (const r of rows) {
      const wf = listed.get(recipientWorkflowId(deliveryId, r.recipient_id));
      if (!wf) recipientMismatches.push(`recipient ${r.recipient_id}: no workflow listed`);
      else if (wf.status !== 'COMPLETED' || wf.efs !== r.status) recipientMismatches.push(`recipient ${r.recipient_id}: workflow ${wf.status} EfsStatus ${wf.efs}, log ${r.status}`);
    }
    if (listed.size !== rows.length) recipientMismatches.push(`${listed.size} recipient workflows listed for ${rows.length} recipients`);
    if (recipientMismatches.length === 0) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  workflowMismatches.push(...recipientMismatches.slice(0, 20));

  // --- how long the delivery took to get going again ---
  const resumed = (
    await pool.query<{ at: Date | null }>(
      `SELECT min(finished_at) AS at FROM send_attempts WHERE delivery_id = $1 AND outcome = 'accepted' AND started_at >= $2`,
      [deliveryId, new Date(fault.endedAt)],
    )
  ).rows[0]!.at;
  const completedAt = stored?.completed_at?.getTime() ?? Date.now();
  return {
    deliveryId,
    recipients: rows.length,
    recipientIds: rows.map((r) => r.recipient_id),
    byStatus,
    notFinal: rows.filter((r) => r.status !== 'sent' && r.status !== 'failed').length,
    lost,
    unexpectedAtMx,
    duplicates,
    logProblems,
    workflowMismatches,
    kpis,
    recoverMs: resumed ? Math.max(0, resumed.getTime() - fault.endedAt) : null,
    completedAfterMs: Math.max(0, completedAt - fault.endedAt),
  };
}

/** What Temporal had to redo for the recipients, from a sample of their histories (all of them up to `max`). */
export interface HistoryStats {
  sampled: number;
  /** Workflow tasks that timed out (a dead worker's, or ones whose completion the server never got) and ran again. */
  workflowTaskTimeouts: number;
  /** Workflow tasks that failed (a local activity failing past its retries in the task, a completion refused) and ran again. */
  workflowTaskFailures: number;
}

export async function historyStats(stack: ProcessStack, deliveryId: string, recipientIds: number[], max = 300): Promise<HistoryStats> {
  const sample = [...recipientIds].sort(() => Math.random() - 0.5).slice(0, max);
  const stats: HistoryStats = { sampled: sample.length, workflowTaskTimeouts: 0, workflowTaskFailures: 0 };
  for (let i = 0; i < sample.length; i += 20) {
    await Promise.all(
      sample.slice(i, i + 20).map(async (rid) => {
        const history = await stack.client.workflow.getHandle(recipientWorkflowId(deliveryId, rid)).fetchHistory();
        for (const e of history.events ?? []) {
          if (e.workflowTaskTimedOutEventAttributes) stats.workflowTaskTimeouts++;
          if (e.workflowTaskFailedEventAttributes) stats.workflowTaskFailures++;
        }
      }),
    );
  }
  return stats;
}

/** Whether the delivery workflow exists on the server (any status). */
export async function workflowExists(stack: ProcessStack, deliveryId: string): Promise<boolean> {
  try {
    await stack.client.workflow.getHandle(deliveryWorkflowId(deliveryId)).describe();
    return true;
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) return false;
    throw e;
  }
}

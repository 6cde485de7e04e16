/**
 * Temporal's own ceiling for the engine's shape of work, with nothing of the engine in it: a parent starts a page of
 * child workflows (as a batch workflow starts recipient workflows) and each child runs two no-op local activities (as
 * a recipient runs its send and its log write). Bundled alone for the bench's ceiling worker.
 */
import { proxyLocalActivities, startChild, ParentClosePolicy } from '@temporalio/workflow';

export interface CeilingActivities {
  noop(): Promise<void>;
}

const { noop } = proxyLocalActivities<CeilingActivities>({ startToCloseTimeout: '30 seconds' });

export async function ceilingChild(): Promise<void> {
  await noop();
  await noop();
}

/** Starts `count` children (abandoned, like the batch workflow's recipients) and ends once all are started. */
export async function ceilingParent(o: { prefix: string; from: number; count: number }): Promise<void> {
  const started: Promise<unknown>[] = [];
  for (let i = 0; i < o.count; i++) {
    started.push(startChild(ceilingChild, { workflowId: `${o.prefix}-${o.from + i}`, parentClosePolicy: ParentClosePolicy.ABANDON }));
  }
  await Promise.all(started);
}

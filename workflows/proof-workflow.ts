/** Sends proofs of a delivery through the worker (same rendering, signing and SMTP path as real messages). */
import { proxyActivities } from '@temporalio/workflow';
import type { ProofActivities, ProofInput, ProofResult } from './contract';

// A handful of SMTP transactions; no automatic retry, the person asking sees each reply at once.
const { sendProofs } = proxyActivities<ProofActivities>({ startToCloseTimeout: '3 minutes', retry: { maximumAttempts: 1 } });

export async function proofWorkflow(input: ProofInput): Promise<ProofResult[]> {
  return sendProofs(input);
}

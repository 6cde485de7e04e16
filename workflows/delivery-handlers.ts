/**
 * The delivery workflow's queries and updates. Validators refuse what does not apply (the caller gets the reason);
 * handlers only record the request on the run, or write through the run's serialised writes. The phases act on it.
 */
import { setHandler } from '@temporalio/workflow';
import { BEFORE_CONFIRMATION } from '../domain/delivery-lifecycle';
import {
  checkCancelRequest,
  cancelUpdate,
  checkConfirmRequest,
  confirmUpdate,
  deliveryKpisQuery,
  deliveryStateQuery,
  checkDraftChanges,
  editDraftUpdate,
  checkPauseRequest,
  pauseUpdate,
  checkRescheduleRequest,
  rescheduleUpdate,
  resumeUpdate,
  type ArgumentCheck,
} from './contract';
import type { DeliveryRun } from './delivery-run';

/** Throws the argument's first problem as the refusal (a validator's error is what the client sees). */
function validArgument(check: ArgumentCheck, value: unknown): void {
  const problem = check(value ?? {});
  if (problem) throw new Error(`invalid argument: ${problem}`);
}

export function registerDeliveryHandlers(run: DeliveryRun): void {
  const view = run.view;
  const notEndedOrCancelling = () => {
    if (run.cancelRequested || run.ended) throw new Error(`the delivery is ${run.cancelRequested ? 'being cancelled' : view.phase}`);
  };

  setHandler(deliveryStateQuery, () => view);
  setHandler(deliveryKpisQuery, () => view.kpis);

  setHandler(
    confirmUpdate,
    (req) => {
      view.confirmedBy = req.confirmedBy ?? 'api';
      return view.phase;
    },
    {
      validator: (req) => {
        validArgument(checkConfirmRequest, req);
        if (run.cancelRequested || view.phase === 'cancelled') throw new Error('the delivery is cancelled');
        if (run.analysing || run.reanalyseRequested || run.editsInProgress > 0 || view.phase === 'analysing') {
          throw new Error('the delivery is still being analysed; confirm once the analysis has ended');
        }
        if (view.phase === 'analysis_failed') throw new Error('the analysis found blocking errors; fix them before confirming');
        if (view.phase !== 'awaiting_confirmation' || view.confirmedBy !== null) throw new Error(`the delivery is already confirmed (phase: ${view.phase})`);
      },
    },
  );

  setHandler(
    cancelUpdate,
    (req) => {
      run.cancelRequested = true;
      view.cancelReason = req.reason ?? null;
      return view.phase;
    },
    {
      validator: (req) => {
        validArgument(checkCancelRequest, req);
        if (run.ended) throw new Error(`the delivery is already ${view.phase}`);
        if (run.cancelRequested) throw new Error('the delivery is already being cancelled');
      },
    },
  );

  // Pause and resume change the flag at once (the next validator sees it) and the phase only while sending; the
  // phase write waits its turn behind earlier writes, so Postgres ends with the workflow's phase.
  setHandler(
    pauseUpdate,
    async (req) => {
      view.paused = true;
      view.pauseReason = { by: 'user', reason: req?.reason ?? null, atMs: Date.now() };
      if (view.phase === 'sending') await run.enter('paused');
      return view.phase;
    },
    {
      validator: (req) => {
        validArgument(checkPauseRequest, req);
        notEndedOrCancelling();
        if (view.paused) throw new Error('the delivery is already paused');
        if (BEFORE_CONFIRMATION.includes(view.phase)) throw new Error('only a confirmed delivery can be paused; it is not confirmed yet');
      },
    },
  );

  setHandler(
    resumeUpdate,
    async () => {
      view.paused = false;
      view.pauseReason = null;
      if (view.phase === 'paused') await run.enter('sending');
      return view.phase;
    },
    {
      validator: () => {
        if (!view.paused) throw new Error('the delivery is not paused');
      },
    },
  );

  setHandler(
    rescheduleUpdate,
    async (req) => {
      await run.setContactDate(req.contactDateMs);
      view.contactDateMs = req.contactDateMs;
      run.rescheduled = true;
      return view.phase;
    },
    {
      validator: (req) => {
        validArgument(checkRescheduleRequest, req);
        notEndedOrCancelling();
        if (![...BEFORE_CONFIRMATION, 'scheduled'].includes(view.phase)) throw new Error('the contact date cannot change once sending has started');
      },
    },
  );

  setHandler(
    editDraftUpdate,
    async (changes) => {
      run.editsInProgress++;
      try {
        await run.updateDraft(changes);
        run.reanalyseRequested = true;
      } finally {
        run.editsInProgress--;
      }
      return view.phase;
    },
    {
      validator: (changes) => {
        validArgument(checkDraftChanges, changes);
        notEndedOrCancelling();
        if (!BEFORE_CONFIRMATION.includes(view.phase) || view.confirmedBy !== null) {
          throw new Error('the delivery is confirmed: its content and target can no longer change');
        }
      },
    },
  );
}

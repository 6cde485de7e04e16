/**
 * The replay safety net: every history recorded under test/replay/histories (real runs of every workflow type, in their
 * interesting shapes; a new set is added with `npm run replay:record`, none is ever re-recorded) is replayed against the current workflow code. A change
 * that would make a running execution take another path than its history (reordered, added or removed activities,
 * timers, children; a changed child workflow ID) fails here with the file's name, before it reaches a server with
 * executions in flight.
 *
 * Replay is local: no Temporal server is used. The workflow bundle is the one the global setup built from the working
 * tree (or, run without it, a fresh bundle of workflows/).
 */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { DefaultLogger, Runtime, Worker, type ReplayWorkerOptions } from '@temporalio/worker';
import type { HistoryAndWorkflowId } from '@temporalio/common';
import * as workflows from '../workflows';
import { workflowsPath } from '../workers/create-worker';
import { historyFromJsonObject } from './replay/history-json';
import { temporalDataConverter } from '../runtime/composition-root';
import { TEST_SECRETS } from './support/harness';

const HISTORIES_DIR = path.join(__dirname, 'replay', 'histories');

interface RecordedHistory {
  scenario: string;
  workflowType: string;
  workflowId: string;
  runId: string;
  history: { events: { workflowExecutionStartedEventAttributes?: { workflowType?: { name?: string } } }[] };
}

/** Every history of every recorded set: `<set>/<scenario>--<workflowType>.json`. */
const files = fs.existsSync(HISTORIES_DIR)
  ? fs
      .readdirSync(HISTORIES_DIR, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .flatMap((d) => fs.readdirSync(path.join(HISTORIES_DIR, d.name)).filter((f) => f.endsWith('.json')).map((f) => `${d.name}/${f}`))
      .sort()
  : [];
const loaded = files.map((file) => ({ file, recorded: JSON.parse(fs.readFileSync(path.join(HISTORIES_DIR, file), 'utf8')) as RecordedHistory }));

/** The workflow types the worker registers: every function workflows/index.ts exports. */
const exportedWorkflowTypes = Object.entries(workflows)
  .filter(([, v]) => typeof v === 'function')
  .map(([name]) => name)
  .sort();

const historyType = (r: RecordedHistory) => r.history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name;

/** file → the replay error (null: replayed cleanly). */
const outcome = new Map<string, Error | null>();
let replayMs = 0;

function replayOptions(): ReplayWorkerOptions {
  const bundlePath = inject('workflowBundlePath');
  return {
    ...(bundlePath && fs.existsSync(bundlePath) ? { workflowBundle: { codePath: bundlePath } } : { workflowsPath: workflowsPath() }),
    replayName: 'replay-safety-net',
    // The production data converter: histories recorded before the payload codec hold plain payloads (they pass
    // through), later ones are sealed with the test key the recording harness used.
    dataConverter: temporalDataConverter(TEST_SECRETS),
  };
}

/** Replays every history with one replay worker; a history that stops the worker is charged to its file, and the rest go on. */
async function replayAll(): Promise<void> {
  const options = replayOptions();
  let start = 0;
  while (start < loaded.length) {
    let i = start;
    const batch = (function* () {
      // Converted here, one at a time: a file that does not convert is charged to itself like a replay failure.
      for (const { recorded } of loaded.slice(start)) yield { workflowId: recorded.workflowId, history: historyFromJsonObject(recorded.history) } satisfies HistoryAndWorkflowId;
    })();
    try {
      for await (const result of Worker.runReplayHistories(options, batch)) {
        outcome.set(loaded[i].file, result.error ?? null);
        i++;
      }
      return;
    } catch (e) {
      outcome.set(loaded[i]?.file ?? '(none)', e as Error);
      start = i + 1;
    }
  }
}

beforeAll(async () => {
  try {
    // A replay that finds nondeterminism logs it at ERROR; the test reports it. Keeps replay chatter out of the output.
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    /* another file of this process installed it */
  }
  const t0 = Date.now();
  await replayAll();
  replayMs = Date.now() - t0;
  console.log(`replayed ${loaded.length} histories (${loaded.reduce((n, l) => n + l.recorded.history.events.length, 0)} events) in ${replayMs} ms`);
}, 120_000);

describe('recorded histories', () => {
  it('exist, well formed, one file name per scenario and workflow type', () => {
    expect(files.length, `no history under ${HISTORIES_DIR}: run npm run replay:record`).toBeGreaterThan(0);
    for (const { file, recorded } of loaded) {
      expect(recorded.workflowId, `${file}: workflowId`).toBeTruthy();
      expect(recorded.history?.events?.length, `${file}: history.events`).toBeGreaterThan(0);
      expect(historyType(recorded), `${file}: the type its history starts`).toBe(recorded.workflowType);
      expect(path.basename(file), `${file}: named <scenario>--<workflowType>.json`).toBe(`${recorded.scenario}--${recorded.workflowType}.json`);
    }
  });

  it('cover every workflow type that workflows/index.ts exports', () => {
    const recordedTypes = new Set(loaded.map(({ recorded }) => historyType(recorded)));
    const missing = exportedWorkflowTypes.filter((t) => !recordedTypes.has(t));
    expect(missing, `workflow types with no recorded history (add a scenario to test/replay/record-histories.ts, then npm run replay:record)`).toEqual([]);
  });
});

describe('replay against the current workflow code', () => {
  it.each(files)('%s', (file) => {
    expect(outcome.has(file), `${file} was not replayed (an earlier history stopped the replay worker)`).toBe(true);
    const error = outcome.get(file);
    if (error) {
      const { recorded } = loaded.find((l) => l.file === file)!;
      // Core's own words ("[TMPRL1100] Nondeterminism error: ...") first: the rest of the message is boilerplate.
      const core = /\[TMPRL\d+\][^"]*/.exec(error.message)?.[0];
      throw new Error(
        `${file} (${recorded.workflowType} ${recorded.workflowId}) does not replay on the current workflow code: ${error.name}: ${core ?? error.message}\n` +
          (core ? `${error.message}\n` : '') +
          'A change to workflow code must keep the commands of executions already running in the same order: put the new path behind patched() ' +
          '(or a new workflow type), never re-record to make this pass (docs/workflow-versioning.md).',
      );
    }
  });
});

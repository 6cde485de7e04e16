/** Finds the Temporal CLI (TEMPORAL_CLI, PATH, the project's tools folder) or builds it there from its Go module. */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { isExecutable, onPath } from './executables';

/** The release that still builds with `go install` (later ones do not). */
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';

/** Returns the path of a usable Temporal CLI, building it into `<toolsDir>/bin` when none is found. */
export function locateTemporalCli(opts: { explicit?: string; toolsDir: string; log?: (msg: string) => void }): string {
  const log = opts.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  if (opts.explicit) {
    if (!isExecutable(opts.explicit)) throw new Error(`TEMPORAL_CLI=${opts.explicit} is not an executable file`);
    return opts.explicit;
  }
  const fromPath = onPath('temporal');
  if (fromPath) return fromPath;
  const local = path.join(opts.toolsDir, 'bin', 'temporal');
  if (isExecutable(local)) return local;

  const go = onPath('go');
  if (!go) {
    throw new Error(
      'The Temporal CLI was not found (TEMPORAL_CLI, PATH, or ' +
        `${local}) and Go is not installed to build it. Install Go 1.22+ or set TEMPORAL_CLI to a temporal binary.`,
    );
  }
  log(`Building the Temporal CLI (${TEMPORAL_CLI_MODULE}) into ${path.dirname(local)}; this takes a few minutes the first time...`);
  fs.mkdirSync(path.dirname(local), { recursive: true });
  const r = spawnSync(go, ['install', TEMPORAL_CLI_MODULE], {
    env: { ...process.env, GOBIN: path.dirname(local) },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.status !== 0 || !isExecutable(local)) {
    throw new Error(`Building the Temporal CLI failed (go install exited with ${r.status ?? r.signal}).`);
  }
  log(`Temporal CLI ready: ${execFileSync(local, ['--version']).toString().trim()}`);
  return local;
}

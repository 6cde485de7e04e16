/** Finds the Temporal CLI (TEMPORAL_CLI, PATH, the project's tools folder) or builds it there from its Go module. */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { isExecutable, onPath } from './executables';
import { StartupError } from './startup-error';

/** The release that still builds with `go install` (later ones do not). */
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';

/** Returns the path of a usable Temporal CLI, building it into `<toolsDir>/bin` when none is found. */
export function locateTemporalCli(opts: { explicit?: string; toolsDir: string; log?: (msg: string) => void }): string {
  const log = opts.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  if (opts.explicit) {
    if (!isExecutable(opts.explicit)) {
      throw new StartupError(
        `Temporal CLI not found: TEMPORAL_CLI=${opts.explicit} is not an executable file — set TEMPORAL_CLI to a temporal binary, or unset it to use PATH or ${path.join(opts.toolsDir, 'bin', 'temporal')} (built by \`npm run temporal:build\`)`,
      );
    }
    return opts.explicit;
  }
  const fromPath = onPath('temporal');
  if (fromPath) return fromPath;
  const local = path.join(opts.toolsDir, 'bin', 'temporal');
  if (isExecutable(local)) return local;

  const go = onPath('go');
  if (!go) {
    throw new StartupError(
      `Temporal CLI not found (TEMPORAL_CLI, PATH, ${local}) and Go is not installed to build it — install Go 1.22+, or set TEMPORAL_CLI to a temporal binary`,
    );
  }
  log(`Building the Temporal CLI (${TEMPORAL_CLI_MODULE}) into ${path.dirname(local)}; this takes a few minutes the first time...`);
  fs.mkdirSync(path.dirname(local), { recursive: true });
  const r = spawnSync(go, ['install', TEMPORAL_CLI_MODULE], {
    env: { ...process.env, GOBIN: path.dirname(local) },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.status !== 0 || !isExecutable(local)) {
    throw new StartupError(
      `Temporal CLI build failed: go install ${TEMPORAL_CLI_MODULE} exited with ${r.status ?? r.signal} (its output is above) — fix that and run \`npm run temporal:build\`, or set TEMPORAL_CLI to a temporal binary`,
    );
  }
  log(`Temporal CLI ready: ${execFileSync(local, ['--version']).toString().trim()}`);
  return local;
}

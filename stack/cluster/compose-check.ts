/**
 * `npm run compose:check`: validates docker-compose.yml in CI without Docker. First the compose specification's own
 * loader (stack/cluster/compose-check/, compose-spec/compose-go: JSON schema, interpolation, normalization,
 * consistency) must accept it with the example settings and refuse it without the required ones; then the resolved
 * project must keep the production layout's rules: image tags with evidence, restart policies and health checks,
 * nothing but the public ports published, the job chain, and the same server settings and search attributes as the
 * local layout (stack/cluster/) that the cluster test runs.
 *
 *   npm run compose:check                          # docker-compose.yml
 *   npm run compose:check -- path/to/compose.yml   # another file (the check's own tests)
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { onPath } from '../executables';
import { searchAttributesSetting } from './local-cluster';
import { DEFAULT_NAMESPACE_RETENTION, TEMPORAL_SERVER_VERSION, TEMPORAL_SERVICE_ENV } from './temporal-server';

const ROOT = path.resolve(__dirname, '..', '..');
export const EXAMPLE_ENV = path.join(__dirname, 'compose.env.example');

/**
 * Every image the compose file may name, with where its tag was seen to exist (docs/deployment.md, "Images").
 * A new tag is added here only with such evidence.
 */
export const KNOWN_IMAGES: Record<string, string> = {
  [`temporalio/server:${TEMPORAL_SERVER_VERSION}`]: 'temporalio/helm-charts chart 0.72.0 (values.yaml server.image.tag 1.29.1)',
  'temporalio/admin-tools:1.29.1-tctl-1.18.4-cli-1.5.0': 'temporalio/helm-charts chart 0.72.0 (admintools.image.tag); temporalio/docker-compose .env at "Bump Server version to 1.29.1"',
  'temporalio/ui:2.42.1': 'temporalio/helm-charts chart 0.72.0 (web.image.tag 2.42.1), the UI the CLI 1.5.1 embeds',
  'postgres:18-bookworm': 'docker-library/official-images library/postgres (Tags: 18.6-bookworm, 18-bookworm)',
  'caddy:2.11-alpine': 'docker-library/official-images library/caddy (Tags: 2.11.4-alpine, 2.11-alpine)',
};
/** The Dockerfile's base image, same rule. */
export const KNOWN_BASE_IMAGES: Record<string, string> = {
  'node:24-bookworm-slim': 'docker-library/official-images library/node (Tags: 24-bookworm-slim, lts-bookworm-slim)',
};
/** Settings the file must refuse to start without (`${VAR:?message}`). */
export const REQUIRED_SETTINGS = [
  'PUBLIC_URL',
  'BOUNCE_DOMAIN',
  'SMTP_HELO_NAME',
  'VERP_SECRET',
  'KEY_ENCRYPTION_SECRET',
  'PAYLOAD_KEYS',
  'APP_POSTGRES_PASSWORD',
  'TEMPORAL_POSTGRES_PASSWORD',
];
/** Host ports published on every interface, and by whom. */
const PUBLIC_PORTS: Record<string, string[]> = { 'public-proxy': ['80', '443'], inbound: ['25'] };
const JOBS = ['temporal-schema', 'temporal-namespace', 'temporal-search-attributes'];

interface Service {
  image?: string;
  build?: { context: string; dockerfile?: string };
  restart?: string;
  healthcheck?: { test?: string[]; disable?: boolean };
  ports?: { host_ip?: string; published?: string; target: number }[];
  environment?: Record<string, string | null>;
  depends_on?: Record<string, { condition: string }>;
  command?: string[] | null;
  volumes?: { type: string; source?: string; target: string }[];
}

/** Builds the loader (Go build cache: seconds after the first time) into the tools folder; returns its path. */
export function buildComposeLoader(toolsDir = path.join(ROOT, '.tools')): string {
  const go = onPath('go');
  if (!go) throw new Error('Go is needed to build the compose loader (stack/cluster/compose-check)');
  const out = path.join(toolsDir, 'bin', 'compose-check');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const r = spawnSync(go, ['build', '-buildvcs=false', '-o', out, '.'], { cwd: path.join(__dirname, 'compose-check'), stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`building the compose loader failed (exit ${r.status ?? r.signal}; its output is above)`);
  return out;
}

/** Runs the compose loader; `envFile` null loads with no variables set at all. */
export function loadCompose(loader: string, file: string, envFile: string | null): { ok: true; project: { services: Record<string, Service> } } | { ok: false; error: string } {
  const args = envFile ? ['-env-file', envFile, file] : [file];
  // An empty environment: only the env file sets variables, so a variable of the CI machine cannot hide a missing one.
  const r = spawnSync(loader, args, { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' }, maxBuffer: 16 * 1024 * 1024 });
  if (r.status !== 0) return { ok: false, error: (r.stderr || r.stdout).trim() };
  return { ok: true, project: JSON.parse(r.stdout) as { services: Record<string, Service> } };
}

/** Every problem found in the compose file (empty when it is valid and keeps the layout's rules). */
export function checkComposeFile(file: string, opts: { loader: string; envFile?: string; dockerfile?: string }): string[] {
  const problems: string[] = [];
  const loaded = loadCompose(opts.loader, file, opts.envFile ?? EXAMPLE_ENV);
  if (!loaded.ok) return [`the compose loader refused ${path.basename(file)}: ${loaded.error}`];
  const services = loaded.project.services;

  // Required settings: without any variable set, the loader must name each one.
  const bare = loadCompose(opts.loader, file, null);
  if (bare.ok) problems.push('loads without any setting: required settings are not marked ${VAR:?message}');
  else for (const v of REQUIRED_SETTINGS) if (!bare.error.includes(`required variable ${v} is missing`)) problems.push(`${v} is not required (\${${v}:?message})`);

  const need = (name: string) => {
    const s = services[name];
    if (!s) problems.push(`service ${name} is missing`);
    return s;
  };

  for (const [name, s] of Object.entries(services)) {
    if (s.build) {
      if (!s.command?.length) problems.push(`${name}: a service built from the Dockerfile names its command`);
    } else if (!s.image || !KNOWN_IMAGES[s.image]) {
      problems.push(`${name}: image ${s.image} has no evidence that its tag exists (KNOWN_IMAGES in stack/cluster/compose-check.ts)`);
    }
    const isJob = JOBS.includes(name);
    if (isJob) {
      if (s.restart && s.restart !== 'no') problems.push(`${name}: a one-shot job must not restart (it retries by itself and must fail loudly)`);
      const script = s.command?.[0];
      if (!script?.startsWith('/scripts/') || !fs.existsSync(path.join(__dirname, 'scripts', path.basename(script)))) problems.push(`${name}: runs ${script}, not a script of stack/cluster/scripts`);
    } else {
      if (!s.restart || s.restart === 'no') problems.push(`${name}: a long-running service needs a restart policy`);
      if (!s.healthcheck?.test?.length || s.healthcheck.disable) problems.push(`${name}: a long-running service needs a health check`);
    }
    for (const p of s.ports ?? []) {
      const published = String(p.published ?? '');
      const isPublic = (PUBLIC_PORTS[name] ?? []).includes(published);
      if (!isPublic && p.host_ip !== '127.0.0.1') problems.push(`${name}: port ${published}:${p.target} is published on every interface (only ${JSON.stringify(PUBLIC_PORTS)} may be)`);
    }
  }

  // The Temporal server: the pinned release, the same server settings as the local layout.
  const temporal = need('temporal');
  if (temporal) {
    if (temporal.image !== `temporalio/server:${TEMPORAL_SERVER_VERSION}`) problems.push(`temporal: image ${temporal.image}, expected temporalio/server:${TEMPORAL_SERVER_VERSION} (TEMPORAL_SERVER_VERSION)`);
    for (const [k, v] of Object.entries(TEMPORAL_SERVICE_ENV)) {
      if (temporal.environment?.[k] !== v) problems.push(`temporal: ${k}=${temporal.environment?.[k]}, the local layout runs ${k}=${v} (TEMPORAL_SERVICE_ENV)`);
    }
    const dyn = temporal.volumes?.find((v) => v.target === `/etc/temporal/${TEMPORAL_SERVICE_ENV.DYNAMIC_CONFIG_FILE_PATH}`);
    const source = dyn ? path.resolve(path.dirname(file), dyn.source ?? '') : '';
    if (!source || !fs.existsSync(source) || fs.realpathSync(source) !== fs.realpathSync(path.join(__dirname, 'dynamicconfig', 'engine.yaml'))) {
      problems.push('temporal: stack/cluster/dynamicconfig/engine.yaml is not mounted where DYNAMIC_CONFIG_FILE_PATH points');
    }
  }

  // The job chain: schema before the server, namespace after it is healthy, search attributes after the namespace,
  // the engine after the search attributes.
  const dependsOn = (svc: string, on: string, condition: string) => {
    const s = services[svc];
    if (s && s.depends_on?.[on]?.condition !== condition) problems.push(`${svc} must depend on ${on} with condition ${condition}`);
  };
  dependsOn('temporal', 'temporal-schema', 'service_completed_successfully');
  dependsOn('temporal-namespace', 'temporal', 'service_healthy');
  dependsOn('temporal-search-attributes', 'temporal-namespace', 'service_completed_successfully');
  for (const svc of ['worker', 'api']) {
    need(svc);
    dependsOn(svc, 'temporal-search-attributes', 'service_completed_successfully');
  }
  const sa = need('temporal-search-attributes');
  if (sa && sa.environment?.SEARCH_ATTRIBUTES !== searchAttributesSetting()) {
    problems.push(`temporal-search-attributes: SEARCH_ATTRIBUTES=${sa.environment?.SEARCH_ATTRIBUTES}, the workflows upsert ${searchAttributesSetting()}`);
  }
  const ns = need('temporal-namespace');
  if (ns && ns.environment?.NAMESPACE_RETENTION !== DEFAULT_NAMESPACE_RETENTION) {
    problems.push(`temporal-namespace: NAMESPACE_RETENTION defaults to ${ns.environment?.NAMESPACE_RETENTION}, documented as ${DEFAULT_NAMESPACE_RETENTION}`);
  }
  for (const svc of ['worker', 'api', 'inbound']) {
    const env = services[svc]?.environment ?? {};
    if (/localhost|127\.0\.0\.1/.test(env.PUBLIC_URL ?? '')) problems.push(`${svc}: PUBLIC_URL points at a local address`);
  }

  // The image the engine's services are built from.
  const dockerfile = opts.dockerfile ?? path.join(path.dirname(file), 'Dockerfile');
  if (fs.existsSync(dockerfile)) {
    const text = fs.readFileSync(dockerfile, 'utf8');
    for (const m of text.matchAll(/^FROM\s+(\S+)/gim)) {
      const base = m[1];
      if (!KNOWN_BASE_IMAGES[base] && !/^(deps|bundle)$/.test(base)) problems.push(`Dockerfile: base image ${base} has no evidence that its tag exists (KNOWN_BASE_IMAGES)`);
    }
    if (!/^USER\s+(?!root\b)\S+/m.test(text)) problems.push('Dockerfile: the image must run as a non-root USER');
    if (!/WORKFLOW_BUNDLE_PATH=/.test(text)) problems.push('Dockerfile: workflows must be bundled at build (WORKFLOW_BUNDLE_PATH)');
  }
  const dockerignore = path.join(path.dirname(file), '.dockerignore');
  const ignored = fs.existsSync(dockerignore) ? fs.readFileSync(dockerignore, 'utf8').split('\n').map((l) => l.trim()) : [];
  for (const entry of ['.env', '.env.*', '.data', '.git']) if (!ignored.includes(entry)) problems.push(`.dockerignore: ${entry} is not excluded from the build context`);
  return problems;
}

if (require.main === module) {
  const file = path.resolve(process.argv[2] ?? path.join(ROOT, 'docker-compose.yml'));
  const loader = buildComposeLoader();
  const problems = checkComposeFile(file, { loader });
  if (problems.length) {
    console.error(`${path.relative(ROOT, file)}: ${problems.length} problem(s)\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    process.exit(1);
  }
  console.log(`${path.relative(ROOT, file)}: valid compose file (compose-spec loader), production layout rules hold`);
}

/**
 * The load generator of the API load bench, run as its own process so that its event loop never competes with the
 * worker's (the bench process runs the worker). Reads its plan as JSON from argv[2], fires authenticated GETs at a
 * fixed overall rate (autocannon), cycling through the given paths, and prints autocannon's result as one JSON line.
 */
import autocannon from 'autocannon';

interface LoadPlan {
  baseUrl: string;
  apiKey: string;
  paths: string[];
  ratePerSecond: number;
  seconds: number;
  connections: number;
}

async function main() {
  const plan = JSON.parse(process.argv[2] ?? '{}') as LoadPlan;
  const cpu0 = process.cpuUsage();
  const result = await autocannon({
    url: plan.baseUrl,
    connections: plan.connections,
    overallRate: plan.ratePerSecond,
    duration: plan.seconds,
    headers: { authorization: `Bearer ${plan.apiKey}` },
    requests: plan.paths.map((path) => ({ method: 'GET', path })),
  });
  const statusCodes = result.statusCodeStats as Record<string, { count: number }> | undefined;
  process.stdout.write(
    JSON.stringify({
      requests: result.requests.total,
      seconds: result.duration,
      perSecond: result.requests.average,
      latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
      statusCodes: Object.fromEntries(Object.entries(statusCodes ?? {}).map(([code, s]) => [code, s.count])),
      // The generator's own CPU (user + system) over the run: on a shared host it is part of what the load costs.
      cpuSeconds: (() => {
        const u = process.cpuUsage(cpu0);
        return (u.user + u.system) / 1e6;
      })(),
    }) + '\n',
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

/** Starts the Java time-skipping test server (days of durable timers in seconds) with the project's search attributes registered. */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { temporal } from '@temporalio/proto';
import { parseSettings } from '../../config/settings';
import { locateTemporalTestServer } from '../../stack/temporal-test-server';
import { ALL_SEARCH_ATTRIBUTES } from '../../workflows/search-attributes';
import { temporalDataConverter } from '../../runtime/composition-root';
import { TEST_SECRETS } from './harness';

export async function startTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const settings = parseSettings(process.env);
  const serverPath = locateTemporalTestServer({ toolsDir: settings.TOOLS_DIR, explicit: process.env.TEMPORAL_TEST_SERVER || undefined });
  // The SDK gives the JVM 5 s to listen; on a loaded 2-core machine it sometimes needs longer than that.
  let env: TestWorkflowEnvironment | undefined;
  for (let attempt = 1; !env; attempt++) {
    try {
      env = await TestWorkflowEnvironment.createTimeSkipping({
        server: { executable: { type: 'existing-path', path: serverPath } },
        // Workers built by the composition root seal their payloads with TEST_SECRETS' key; tests also run plain SDK
        // workers with fake activities here. This client opens sealed payloads and sends plain ones, which both read.
        client: { dataConverter: temporalDataConverter(TEST_SECRETS, { sealOutgoing: false }) },
      });
    } catch (e) {
      if (attempt >= 3 || !/did not start within/.test(String((e as Error).message))) throw e;
    }
  }
  // The test server refuses unknown search attributes ("INVALID_ARGUMENT: search attribute DeliveryId is not defined" at
  // start): register the project's keywords through its operator service, as the dev server's --search-attribute flags do.
  await env.connection.operatorService.addSearchAttributes({
    namespace: 'default',
    searchAttributes: Object.fromEntries(ALL_SEARCH_ATTRIBUTES.map((k) => [k.name, temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD])),
  });
  return env;
}

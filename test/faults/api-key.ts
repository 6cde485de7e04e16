/** The API key the fault suite's client sends: created the one way keys come to exist (db/api-key-store.ts). */
import { createApiKey } from '../../db/api-key-store';
import type { ProcessStack } from '../support/process-stack';

/** An admin key named after the suite, in the stack's database (the API process has migrated it by now). */
export async function provisionApiKey(stack: ProcessStack): Promise<string> {
  const { secret } = await createApiKey(stack.pool, { name: 'fault suite', scopes: ['admin'] });
  return secret;
}

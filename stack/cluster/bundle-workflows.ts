/**
 * Bundles workflows/ once into a file (the Dockerfile runs it at image build; WORKFLOW_BUNDLE_PATH points the worker
 * at it), so a worker starts in about a second instead of bundling at every start.
 *   node --import tsx stack/cluster/bundle-workflows.ts OUTPUT
 */
import fs from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { workflowsPath } from '../../workers/create-worker';
// The failure converter seals failure messages (they quote SMTP replies): a prebuilt bundle must carry it.
import { workflowBundleConverterOptions } from '../../runtime/data-converter-codec';

async function main() {
  const out = process.argv[2];
  if (!out) throw new Error('usage: bundle-workflows.ts OUTPUT');
  const bundle = await bundleWorkflowCode({ workflowsPath: workflowsPath(), ...workflowBundleConverterOptions(), logger: new DefaultLogger('WARN') });
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  fs.writeFileSync(out, bundle.code);
  console.log(`workflow bundle: ${out} (${(bundle.code.length / 1e6).toFixed(2)} MB)`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

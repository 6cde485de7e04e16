/**
 * Writes docs/openapi.json, the OpenAPI 3.1 description of every route (api/openapi/document.ts), so that integrators
 * can read it without running the engine. `npm run openapi`; `npm run openapi -- --check` only says whether the file
 * is current (test/openapi.test.ts fails when it is not).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildOpenApiDocument } from '../api/openapi/document';

export const OPENAPI_FILE = join(__dirname, '..', 'docs', 'openapi.json');

/** The file's exact content: the document, two-space indented, with a final newline. */
export function openApiFileContent(): string {
  return `${JSON.stringify(buildOpenApiDocument(), null, 2)}\n`;
}

if (require.main === module) {
  const content = openApiFileContent();
  if (process.argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(OPENAPI_FILE, 'utf8');
    } catch {
      /* missing: stale */
    }
    if (current !== content) {
      console.error('docs/openapi.json is out of date: run npm run openapi');
      process.exit(1);
    }
    console.log('docs/openapi.json is up to date');
  } else {
    writeFileSync(OPENAPI_FILE, content);
    const doc = JSON.parse(content) as { paths: Record<string, object> };
    const operations = Object.values(doc.paths).reduce((n, p) => n + Object.keys(p).length, 0);
    console.log(`wrote docs/openapi.json: ${operations} operations, ${content.length} bytes`);
  }
}

import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * Source for `new Worker(source, { eval: true })` that registers tsx's ESM hooks in the worker and
 * then imports the TypeScript module `entry`. `--import tsx` in a worker's execArgv is not honoured by
 * Node 20 for the entry module; this works the same under vitest and under `node --import tsx`.
 */
export function tsWorkerSource(entry: URL): string {
  const tsxDir = dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
  const api = pathToFileURL(join(tsxDir, 'dist/esm/api/index.mjs')).href;
  return `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); });`;
}

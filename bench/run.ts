/**
 * `npm run bench -- <name>`: runs bench/<name>.ts. Every benchmark prints its figure next to a
 * reference measured in the same run, as a ratio.
 */
import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here).filter((f) => f.endsWith('.ts') && f !== 'run.ts').map((f) => f.replace(/\.ts$/, ''));
const name = process.argv[2];
if (!name || !available.includes(name)) {
  process.stderr.write(`usage: npm run bench -- <name>\navailable: ${available.join(', ')}\n`);
  process.exit(2);
}
const mod = await import(pathToFileURL(`${here}/${name}.ts`).href);
await mod.main(process.argv.slice(3));

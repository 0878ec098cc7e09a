/**
 * `npm run docs:config`: rewrites the configuration table in README.md from the table in src/config.ts.
 * contract-tests/config.table.test.ts fails while the README differs from what this writes.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { withConfigTable } from '../src/config-docs.ts';

const readme = path.join(import.meta.dirname, '..', 'README.md');
const before = await readFile(readme, 'utf8');
const after = withConfigTable(before);
await writeFile(readme, after);
process.stdout.write(before === after ? 'README.md: configuration table already up to date\n' : 'README.md: configuration table rewritten\n');

// Writes crds/ from the zod schemas: `npm run gen:crds`.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateCrdFiles } from './crds.js';

const dir = process.argv[2] ?? 'crds';
mkdirSync(dir, { recursive: true });
const files = generateCrdFiles();
for (const name of readdirSync(dir)) if (name.endsWith('.yaml') && !files.has(name)) rmSync(join(dir, name));
for (const [name, text] of files) writeFileSync(join(dir, name), text);
console.log(`wrote ${files.size} CRD(s) to ${dir}/`);

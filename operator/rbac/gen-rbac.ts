// Writes the chart's and kustomize's RBAC from operator-rbac.ts: `npm run gen:rbac`.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { generateRbacFiles } from './rbac-files.js';

const root = process.argv[2] ?? '.';
const files = generateRbacFiles();
for (const [rel, text] of files) {
  const file = join(root, rel);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}
console.log(`wrote ${files.size} RBAC file(s)`);

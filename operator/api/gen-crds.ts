// Writes crds/ (and its copies in the Helm chart and kustomize's config/crd)
// from the zod schemas: `npm run gen:crds`.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateCrdFiles } from './crds.js';

const CRD_DIRS = ['crds', 'charts/swarm-operator/crds', 'config/crd/bases'];
const dirs = process.argv.length > 2 ? process.argv.slice(2) : CRD_DIRS;
const files = generateCrdFiles();
for (const dir of dirs) {
  mkdirSync(dir, { recursive: true });
  for (const name of readdirSync(dir)) if (name.endsWith('.yaml') && !files.has(name)) rmSync(join(dir, name));
  for (const [name, text] of files) writeFileSync(join(dir, name), text);
  console.log(`wrote ${files.size} CRD(s) to ${dir}/`);
}

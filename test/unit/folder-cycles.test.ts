// No two folders of operator/ import each other, directly or through others:
// each folder is a layer a reader can understand from the ones it imports;
// nor do two files. (Type imports count too: they couple all the same.)
import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const operatorDir = join(import.meta.dirname, '..', '..', 'operator');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? sources(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : [],
  );
}

/** operator/<folder>/... -> <folder>; files at the top are '.' */
const folderOf = (file: string): string => relative(operatorDir, file).split('/').slice(0, -1)[0] ?? '.';

/** Node -> node -> the imports that make the edge; a node is what `nodeOf` makes of a file (its folder, or itself). */
function importGraph(files: readonly string[], read: (f: string) => string, nodeOf: (file: string) => string = folderOf): Map<string, Map<string, string[]>> {
  const edges = new Map<string, Map<string, string[]>>();
  for (const file of files) {
    for (const m of read(file).matchAll(/(?:^|\n)\s*(?:import|export)\b[^'";]*?\bfrom\s+'(\.[^']+)'/g)) {
      const from = nodeOf(file);
      const to = nodeOf(resolve(dirname(file), m[1]!).replace(/\.js$/, '.ts'));
      if (from === to) continue;
      const out = edges.get(from) ?? new Map<string, string[]>();
      out.set(to, [...(out.get(to) ?? []), `${relative(operatorDir, file)} -> ${m[1]}`]);
      edges.set(from, out);
    }
  }
  return edges;
}

/** The strongly connected components with more than one folder (Tarjan). */
function cycles(edges: Map<string, Map<string, string[]>>): string[][] {
  const nodes = new Set([...edges.keys(), ...[...edges.values()].flatMap((m) => [...m.keys()])]);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v)?.keys() ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of nodes) if (!index.has(v)) visit(v);
  return found;
}

describe('folders of operator/', () => {
  it('import one another without a cycle', () => {
    const edges = importGraph(sources(operatorDir), (f) => readFileSync(f, 'utf8'));
    // Sanity: the graph is real (the reconcilers use the API client layer).
    expect(edges.get('swarm')?.has('k8s')).toBe(true);
    const found = cycles(edges).map((c) => ({ cycle: c, edges: c.flatMap((a) => c.flatMap((b) => edges.get(a)?.get(b) ?? [])) }));
    expect(found).toEqual([]);
  });

  it('nor do their files', () => {
    const edges = importGraph(
      sources(operatorDir),
      (f) => readFileSync(f, 'utf8'),
      (f) => relative(operatorDir, f),
    );
    expect(edges.get('swarm/swarm-reconciler.ts')?.has('swarm/swarm-run.ts')).toBe(true);
    const found = cycles(edges).map((c) => ({ cycle: c, edges: c.flatMap((a) => c.flatMap((b) => edges.get(a)?.get(b) ?? [])) }));
    expect(found).toEqual([]);
  });

  it('the check finds a cycle when there is one', () => {
    const files = [join(operatorDir, 'a/x.ts'), join(operatorDir, 'b/y.ts'), join(operatorDir, 'c/z.ts')];
    const text: Record<string, string> = {
      'a/x.ts': "import { y } from '../b/y.js';",
      'b/y.ts': "import type { Z } from '../c/z.js';\nexport const y = 1;",
      'c/z.ts': "export { x } from '../a/x.js';",
    };
    const read = (f: string) => text[relative(operatorDir, f)]!;
    expect(cycles(importGraph(files, read))).toEqual([['a', 'b', 'c']]);
    text['c/z.ts'] = 'export type Z = number;';
    expect(cycles(importGraph(files, read))).toEqual([]);
  });
});

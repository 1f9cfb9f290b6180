// Validates task dependencies by task id before anything runs: duplicate ids,
// unknown dependencies and cycles are refused with the offending ids named.
export interface DependencyNode {
  id: string;
  dependsOn?: readonly string[];
}

export class DependencyGraphError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DependencyGraphError';
  }
}

export interface DependencyGraph {
  /** Number of unfinished dependencies per task id. */
  indegree: Map<string, number>;
  /** Task ids waiting on each task id. */
  dependents: Map<string, string[]>;
}

export function buildDependencyGraph(nodes: readonly DependencyNode[]): DependencyGraph {
  const ids = new Set<string>();
  for (const n of nodes) {
    if (ids.has(n.id)) throw new DependencyGraphError(`duplicate task id ${JSON.stringify(n.id)}`);
    ids.add(n.id);
  }
  const indegree = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const n of nodes) {
    const deps = [...new Set(n.dependsOn ?? [])];
    for (const d of deps) {
      if (!ids.has(d)) throw new DependencyGraphError(`task ${JSON.stringify(n.id)} depends on unknown task ${JSON.stringify(d)}`);
      if (d === n.id) throw new DependencyGraphError(`dependency cycle: ${n.id} -> ${n.id}`);
      const list = dependents.get(d);
      if (list) list.push(n.id);
      else dependents.set(d, [n.id]);
    }
    indegree.set(n.id, deps.length);
  }
  const cycle = findCycle(nodes);
  if (cycle) throw new DependencyGraphError(`dependency cycle: ${cycle.join(' -> ')}`);
  return { indegree, dependents };
}

/** Iterative DFS (500+ tasks must not blow the stack); returns one cycle's path. */
function findCycle(nodes: readonly DependencyNode[]): string[] | undefined {
  const deps = new Map(nodes.map((n) => [n.id, [...new Set(n.dependsOn ?? [])]]));
  const state = new Map<string, 1 | 2>(); // 1 = on the current path, 2 = done
  for (const root of nodes) {
    if (state.has(root.id)) continue;
    const path: string[] = [];
    const stack: Array<{ id: string; next: number }> = [{ id: root.id, next: 0 }];
    state.set(root.id, 1);
    path.push(root.id);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const children = deps.get(top.id) ?? [];
      if (top.next < children.length) {
        const child = children[top.next++]!;
        const s = state.get(child);
        if (s === 1) return [...path.slice(path.indexOf(child)), child];
        if (s === undefined) {
          state.set(child, 1);
          path.push(child);
          stack.push({ id: child, next: 0 });
        }
      } else {
        state.set(top.id, 2);
        path.pop();
        stack.pop();
      }
    }
  }
  return undefined;
}

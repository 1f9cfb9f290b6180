// Status conditions the Kubernetes way: one entry per type, lastTransitionTime
// moves only when the status changes, observedGeneration says which spec it judged.
import { kubeTime } from './common.js';
import type { Condition } from './common.js';

export interface ConditionInput {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
}

export function setCondition(conditions: readonly Condition[] | undefined, c: ConditionInput, generation: number | undefined, now = new Date()): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((x) => x.type === c.type);
  const previous = i >= 0 ? list[i] : undefined;
  const next: Condition = {
    ...c,
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    lastTransitionTime: previous && previous.status === c.status ? previous.lastTransitionTime : kubeTime(now),
  };
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list;
}

export const findCondition = (conditions: readonly Condition[] | undefined, type: string): Condition | undefined => conditions?.find((c) => c.type === type);

export const isTrue = (conditions: readonly Condition[] | undefined, type: string): boolean => findCondition(conditions, type)?.status === 'True';

/** The list without `type` (conditions of the abnormal-true kind are absent when they do not hold). */
export const removeCondition = (conditions: readonly Condition[] | undefined, type: string): Condition[] => (conditions ?? []).filter((c) => c.type !== type);

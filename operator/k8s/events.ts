// Kubernetes Events for every decision the operator takes, aggregated like
// client-go's recorder: a repeat of the same event bumps its count.
import { createHash } from 'node:crypto';
import { kubeTime } from '../api/common.js';
import { isAlreadyExists, isNotFound } from './errors.js';
import { resourcePath } from './client.js';
import type { KubeClient } from './client.js';

export interface InvolvedObject {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  uid?: string;
}

export type EventType = 'Normal' | 'Warning';

export class EventRecorder {
  private readonly counts = new Map<string, number>();

  constructor(
    private readonly client: KubeClient,
    private readonly component: string,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  /** Never throws: an event that cannot be written must not fail a reconcile. */
  async record(obj: InvolvedObject, type: EventType, reason: string, message: string): Promise<void> {
    const digest = createHash('sha256').update(`${obj.uid ?? obj.name}\0${type}\0${reason}\0${message}`).digest('hex').slice(0, 16);
    const name = `${obj.name.slice(0, 200)}.${digest}`;
    const path = resourcePath({ group: '', version: 'v1', plural: 'events', namespace: obj.namespace });
    const now = kubeTime();
    // Bounded memory over a long life: forgetting only means a fresh create, which falls back to a patch.
    if (this.counts.size > 10_000) this.counts.clear();
    const count = (this.counts.get(name) ?? 0) + 1;
    try {
      if (count > 1) {
        try {
          await this.client.mergePatch(`${path}/${name}`, { count, lastTimestamp: now });
          this.counts.set(name, count);
          return;
        } catch (e) {
          if (!isNotFound(e)) throw e;
        }
      }
      await this.client.create(path, {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace: obj.namespace },
        involvedObject: obj,
        reason,
        message: message.slice(0, 1024),
        type,
        count: 1,
        firstTimestamp: now,
        lastTimestamp: now,
        source: { component: this.component },
        reportingComponent: this.component,
      });
      this.counts.set(name, 1);
    } catch (e) {
      if (isAlreadyExists(e)) {
        this.counts.set(name, 1);
        await this.client.mergePatch(`${path}/${name}`, { lastTimestamp: now }).catch(this.onError);
        return;
      }
      this.onError(e);
    }
  }
}

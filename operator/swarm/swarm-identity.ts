// The coordinator pods' least-privilege identity (coordinator-rbac.ts), made
// before the pods that need it: per swarm, or shared per namespace.
import { resourcePath } from '../k8s/client.js';
import { isAlreadyExists } from '../k8s/errors.js';
import { sharedCoordinatorRbac } from './coordinator-rbac.js';
import { FIELD_MANAGER } from './swarm-write.js';
import type { KubeClient } from '../k8s/client.js';

/** The shared identity is re-ensured this often per namespace (someone may have deleted it). */
const SHARED_IDENTITY_TTL_MS = 5 * 60_000;

/**
 * Creates an RBAC object, the cheap request for the API server (server-side
 * apply costs it a managed-fields merge); one that exists is converged by a
 * merge patch. Not by apply: a merge patch replaces lists whole, so the
 * controller reference of a same-named Swarm deleted before (whose garbage
 * was not collected yet) is replaced; apply kept both controller references,
 * which the API server refuses (422), and the pod never came.
 */
async function ensureObject(
  client: KubeClient,
  namespace: string,
  plural: string,
  obj: { metadata: { name: string } },
  group = 'rbac.authorization.k8s.io',
): Promise<void> {
  const at = { group, version: 'v1', plural, namespace };
  await client.create(resourcePath(at), obj, FIELD_MANAGER).catch(async (e: unknown) => {
    if (!isAlreadyExists(e)) throw e;
    await client.mergePatch(resourcePath({ ...at, name: obj.metadata.name }), obj, FIELD_MANAGER);
  });
}

type Named = { metadata: { name: string } };

/**
 * A ServiceAccount with its Role, then its RoleBinding: the pod's admission
 * needs its ServiceAccount, and the RoleBinding needs its Role (without the
 * `bind` verb the API server's escalation check reads the Role, and a binding
 * racing it fails with 404: then the pod runs unbound, 403, lost, V1).
 */
export async function ensureIdentity(
  client: KubeClient,
  namespace: string,
  rbac: { serviceAccount: Named; role: Named; roleBinding: Named },
  besideBinding?: () => Promise<void>,
): Promise<void> {
  await Promise.all([ensureObject(client, namespace, 'serviceaccounts', rbac.serviceAccount, ''), ensureObject(client, namespace, 'roles', rbac.role)]);
  await Promise.all([ensureObject(client, namespace, 'rolebindings', rbac.roleBinding), besideBinding?.()]);
}

/** The shared coordinator identity of each namespace, ensured once per TTL (concurrent reconciles share the request). */
export class SharedIdentities {
  private readonly ensured = new Map<string, { at: number; done: Promise<void> }>();
  constructor(private readonly client: KubeClient) {}

  ensure(namespace: string, now = Date.now()): Promise<void> {
    const hit = this.ensured.get(namespace);
    if (hit && now - hit.at < SHARED_IDENTITY_TTL_MS) return hit.done;
    const done = ensureIdentity(this.client, namespace, sharedCoordinatorRbac(namespace));
    this.ensured.set(namespace, { at: now, done });
    // A failed ensure is retried by the next reconcile (not if a newer one replaced it meanwhile).
    done.catch(() => {
      if (this.ensured.get(namespace)?.done === done) this.ensured.delete(namespace);
    });
    return done;
  }

  forget(namespace: string): void {
    this.ensured.delete(namespace);
  }
}

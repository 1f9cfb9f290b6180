import { describe, expect, it } from '@jest/globals';
import { parseOperatorOptions } from '../../../operator/cli/operator-command.js';

const parse = (args: string[], env: NodeJS.ProcessEnv = {}) => {
  const o = parseOperatorOptions(args, env);
  if (o.help) throw new Error('help');
  return o;
};

describe('cfn operator options', () => {
  it('coordinator identity: per-swarm unless asked (shared needs the admission policy the chart installs)', () => {
    expect(parse([]).coordinatorIdentity).toBe('per-swarm');
    expect(parse([], { COORDINATOR_IDENTITY: 'shared' }).coordinatorIdentity).toBe('shared');
    expect(parse(['--coordinator-identity', 'per-swarm'], { COORDINATOR_IDENTITY: 'shared' }).coordinatorIdentity).toBe('per-swarm');
    expect(parse(['--coordinator-identity', 'shared']).coordinatorIdentity).toBe('shared');
  });

  it('refuses an unknown identity naming the flag', () => {
    expect(() => parse(['--coordinator-identity', 'cluster'])).toThrow(/--coordinator-identity: .*per-swarm.*shared/);
    expect(() => parse([], { COORDINATOR_IDENTITY: 'everyone' })).toThrow(/--coordinator-identity/);
  });

  it('keeps the other defaults', () => {
    expect(parse([])).toMatchObject({ workers: 8, metricsPort: 8080, leaderElect: true, defaultVersion: 'v2', namespaces: [] });
  });
});

#!/usr/bin/env node
// The kubectl plugin: `kubectl swarm ...` runs this file (kubectl finds
// kubectl-swarm on PATH), which is `cfn swarm ...` (operator/cli/plugin).
process.argv.splice(2, 0, 'swarm');
await import('./cfn.js');

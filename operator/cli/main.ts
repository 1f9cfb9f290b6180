// `cfn` entry point: bin/cfn.js calls runCli(argv) and exits with its result.
import { createLogger } from '../observability/logger.js';
import { resolveLogLevel } from '../observability/logger.js';
import type { CliIo } from './io.js';
import { processIo } from './io.js';
import { coordinateCommand, COORDINATE_HELP } from './coordinate-command.js';
import { operatorCommand, OPERATOR_HELP } from './operator-command.js';
import { pluginCommand, PLUGIN_HELP } from './plugin/plugin-command.js';
import { resultsCommand, RESULTS_HELP } from './results-command.js';
import { runCommand } from './run-command.js';
import { parseRunOptions, RUN_HELP } from './run-options.js';
import { EXIT, UsageError } from './usage-error.js';

export { EXIT, UsageError } from './usage-error.js';
export type { CliIo } from './io.js';

export const MAIN_HELP = `Usage: cfn <command> [options]

Runs swarms of agent processes with the V2 (bash on tmpfs) coordinator or its
V1 fallback (TypeScript, SQLite memory).

Commands:
  run         run one objective on N agents (cfn run --help)
  operator    run the Kubernetes operator (cfn operator --help)
  coordinate  run one Swarm as its coordinator pod does (cfn coordinate --help)
  results     every agent's stored result of a Swarm (cfn results --help)
  swarm       show Swarms and steer RolloutPolicies: the kubectl plugin
              \`kubectl swarm\` (cfn swarm --help)
  help      show help for a command

Environment: LOG_LEVEL (fatal..trace, default warn; JSON logs on stderr),
CFN_SHM_PATH (default /dev/shm/cfn), CFN_MEMORY_PATH (V1, default
.cfn/memory.sqlite), COORDINATION_VERSION, V2_ROLLOUT_PERCENTAGE.
`;

type Command = (args: readonly string[], io: CliIo) => Promise<number>;

const commands: Record<string, Command> = {
  run: async (args, io) => {
    const options = parseRunOptions(args);
    if (options.help) {
      io.stdout.write(RUN_HELP);
      return EXIT.ok;
    }
    const logger = createLogger({ name: 'cfn', level: resolveLogLevel(io.env.LOG_LEVEL) });
    return runCommand(options, io, logger);
  },
  operator: operatorCommand,
  coordinate: coordinateCommand,
  swarm: (args, io) => pluginCommand(args, io),
  results: (args, io) => resultsCommand(args, io),
  help: async (args, io) => {
    const topic = args[0];
    if (topic === undefined) io.stdout.write(MAIN_HELP);
    else if (topic === 'run') io.stdout.write(RUN_HELP);
    else if (topic === 'operator') io.stdout.write(OPERATOR_HELP);
    else if (topic === 'coordinate') io.stdout.write(COORDINATE_HELP);
    else if (topic === 'swarm') io.stdout.write(PLUGIN_HELP);
    else if (topic === 'results') io.stdout.write(RESULTS_HELP);
    else throw new UsageError(`no help for unknown command ${JSON.stringify(topic)}`);
    return EXIT.ok;
  },
};

export async function runCli(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const [name, ...rest] = argv;
  try {
    if (name === undefined) {
      io.stderr.write(MAIN_HELP);
      return EXIT.usage;
    }
    if (name === '--help' || name === '-h') {
      io.stdout.write(MAIN_HELP);
      return EXIT.ok;
    }
    const command = commands[name];
    if (!command) throw new UsageError(`unknown command ${JSON.stringify(name)} (commands: ${Object.keys(commands).join(', ')})`);
    return await command(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`cfn: ${err.message}\n`);
      return EXIT.usage;
    }
    io.stderr.write(`cfn: ${(err as Error).message}\n`);
    return EXIT.runFailed;
  }
}

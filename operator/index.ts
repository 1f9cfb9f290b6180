// Library exports of swarm-operator (package "exports" -> dist/operator/index.js).
export type {
  AgentInfo,
  AgentResponse,
  AgentState,
  Capabilities,
  CoordinationVersion,
  HealthReport,
  Coordinator,
  ObjectiveResult,
  ObjectiveSpec,
  SwarmRunState,
  RunStatus,
} from './coordination/types.js';
export type { IndexRange } from './coordination/index-range.js';

export { BashCoordinator, DEFAULT_SHM_PATH } from './coordination/v2/bash-coordinator.js';
export { CoordinatorUnavailableError } from './coordination/v2/engine-preflight.js';
export { EngineError, ENGINE_EXIT } from './coordination/v2/engine-result.js';
export type { BashCoordinatorOptions, BashCoordinatorEvents } from './coordination/v2/bash-coordinator.js';
export { SwarmCoordinator, CoordinatorNotStartedError } from './coordination/v1/swarm-coordinator.js';
export type { SwarmCoordinatorOptions } from './coordination/v1/swarm-coordinator.js';
export { EventBus } from './coordination/v1/event-bus.js';
export type { SwarmEvents } from './coordination/v1/event-bus.js';
export { ResponseCheckpointStore, DEFAULT_MEMORY_PATH, DESIGN_MEMORY_PATH } from './coordination/v1/response-checkpoint-store.js';
export { CoordinatorFactory, CoordinatorStartError, DEFAULT_FALLBACK_TIMEOUT_MS } from './coordination/factory/coordinator-factory.js';
export type { CoordinatorFactoryConfig, CreatedCoordinator } from './coordination/factory/coordinator-factory.js';
export { detectVersion, InvalidVersionSettingError } from './coordination/version/decide-version.js';
export type { DetectVersionInput, VersionDecision } from './coordination/version/decide-version.js';
export { rolloutBucket } from './coordination/version/rollout-bucket.js';
export { ResultCollector } from './coordination/v2/result-collector.js';
export { writeObjective } from './coordination/v2/message-bridge.js';
export { agentResponseSchema, statusFileSchema, healthFileSchema, busMessageSchema } from './coordination/v2/schemas.js';
export { validateSpec, InvalidSpecError } from './coordination/v2/spec.js';

export { runCli } from './cli/main.js';
export { createLogger } from './observability/logger.js';
export { assertValidId, generateId, isValidId } from './util/ids.js';
export { compressRanges, expandRanges } from './util/ranges.js';
export { splitShellWords } from './util/shell-words.js';
export { atomicWrite } from './util/atomic-write.js';

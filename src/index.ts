/** msgflo-ts public API. */
export * from './errors.js';
export {
  loadSettings,
  readSetting,
  settingsEnv,
  SETTINGS,
  type Settings,
  type SettingKey,
  type SettingSpec,
  type Flags,
  type Env,
} from './settings.js';
export type * from './graph/types.js';
export { isRoutingComponent, ROUTING_COMPONENTS } from './graph/types.js';
export * from './participant/index.js';
export { parseDiscovery, discoveryMessage, type DiscoveryMessage, type ParticipantInfo, type PortDefinition } from './protocol/discovery.js';
export { queueName, deadLetterName, DISCOVERY_QUEUE } from './protocol/naming.js';
export { connectTransport, createTransportRegistry, TransportRegistry, type TransportOptions, type TransportFactory } from './transport/index.js';
export type * from './transport/types.js';
export { Coordinator, type CoordinatorEvent, type CoordinatorOptions, type ResolvedBinding } from './coordinator/coordinator.js';
export { ParticipantRegistry, type ParticipantEntry } from './coordinator/registry.js';
export { Launcher, type LaunchSpec, type LauncherEvent, type LauncherOptions } from './coordinator/launcher.js';
export { FakeClock, systemClock, type Clock } from './util/clock.js';
export * from './statechart/index.js';
export * from './protocol/snoop.js';
export { startNetwork, Network, type NetworkOptions, type LaunchOptions, type LaunchGraphOptions } from './coordinator/network.js';
export { describeNetworkEvent, describeBinding, type NetworkEvent, type ProcessEvent } from './coordinator/network-events.js';
export { loadLibrary, type ComponentLibrary, type LibraryOptions } from './coordinator/library.js';
export { loadGraph, parseGraph, parseFbp, parseJsonGraph, graphToJson, validateGraph } from './graph/index.js';
export { describeDefinition } from './participant/ports.js';
export { FbpRuntime, CAPABILITIES, PROTOCOL_VERSION, type FbpRuntimeOptions, type RuntimeChannel } from './runtime/runtime.js';
export { RuntimeServer, DEFAULT_RUNTIME_PORT, flowhubUrl, type RuntimeAddress, type RuntimeServerOptions } from './runtime/server.js';

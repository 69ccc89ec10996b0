/** runtime/: the FBP runtime protocol (Flowhub, fbp-spec) on top of the coordinator. */
export { FbpRuntime, Connection, CAPABILITIES, PROTOCOL_VERSION, errorText, type FbpRuntimeOptions, type RuntimeChannel } from './runtime.js';
export { RuntimeServer, DEFAULT_RUNTIME_PORT, flowhubUrl, type RuntimeAddress, type RuntimeServerOptions } from './server.js';
export { LiveNetwork, type LiveNetworkOptions } from './live/live-network.js';
export { edgeId, iipId } from './live/ids.js';
export type { LiveMessage } from './live/reports.js';
export { GraphDocument, GraphCommandError, type GraphChange, type GraphGroup, type GraphProperties } from './graph-doc.js';
export { ComponentCatalog, type ComponentDescription, type ProtocolPort } from './components.js';
export { schemaProblems, hasSchema, capabilityDefinitions } from './schemas.js';
export { TraceBuffer } from './trace.js';

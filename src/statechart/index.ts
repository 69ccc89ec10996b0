/**
 * Statecharts behind participants: the XState v5 adapter, the one-state chart of the function form, and miros
 * spy/trace. No I/O here; the participant runtime (src/participant) drives charts and publishes what they spy.
 */
export * from './engine.js';
export * from './format.js';
export { startLines, stepLines, type SpyState, type Step, type StepTransition } from './spy.js';
export { FunctionChart, FUNCTION_STATE, type ChartFunction } from './function-chart.js';
export { XStateChart, type XStateChartOptions, type ClockLike } from './xstate.js';
export { sequenceDiagram, type SequenceOptions } from './sequence.js';
export type { AnyStateMachine } from 'xstate';
/** XState's machine builders and actions, for participants that import everything from msgflo-ts. */
export { setup, createMachine, assign, raise, cancel, emit, enqueueActions, and, or, not, stateIn, fromPromise, fromCallback } from 'xstate';

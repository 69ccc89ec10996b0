/**
 * What a Network reports, and the one wording of it: the CLIs print these lines, the FBP runtime passes the
 * ones about its processes on to its clients (network:output / network:error).
 */
import { reasonOf } from '../errors.js';
import type { CoordinatorEvent, ResolvedBinding } from './coordinator.js';
import type { LauncherEvent } from './launcher.js';

/** What happens to the participant processes a network starts. */
export type ProcessEvent =
  | LauncherEvent
  /** A participant node whose component the library cannot run: said once per node and component. */
  | { type: 'unlaunchable'; role: string; node: string; component: string; known: string[] }
  /** Starting or stopping a role's process failed. */
  | { type: 'process-error'; role: string; error: Error };

export type NetworkEvent =
  | CoordinatorEvent
  | ProcessEvent
  /** No broker was given: the embedded MQTT broker was started. */
  | { type: 'embedded-broker'; url: string; wsUrl: string | undefined }
  /** The broker connection is made (the URL may hold credentials: mask it before showing it). */
  | { type: 'connected'; url: string };

/** A binding as msgflo-setup shows it: `PUBSUB: a.OUT -> b.IN`, and its dead-letter route. */
export function describeBinding(b: ResolvedBinding): string[] {
  const lines = [`${b.type.toUpperCase()}: ${b.src} -> ${b.tgt}${b.bridge ? ' (bridged in this process)' : ''}`];
  if (b.deadletter) lines.push(`DEADLETTER: dead-${b.tgt} -> ${b.deadletter}`);
  return lines;
}

function describeCoordinatorEvent(e: CoordinatorEvent): string | undefined {
  switch (e.type) {
    case 'participant-added':
      return `+ participant ${e.participant.role} (${e.participant.component}) ${e.participant.id}`;
    case 'participant-expired':
      return `- participant ${e.participant.role} expired: no heartbeat since ${new Date(e.lastSeen).toISOString()} (${e.participant.id})`;
    case 'participant-left':
      return `- participant ${e.participant.role} stopped (${e.participant.id})`;
    case 'binding-added':
      return describeBinding(e.binding).map((l) => `bound ${l}`).join('\n');
    case 'binding-removed':
      return describeBinding(e.binding).map((l) => `unbound ${l}`).join('\n');
    case 'iip-sent':
      return `IIP -> ${e.queue}: ${JSON.stringify(e.data)}`;
    case 'invalid-discovery':
      return `ignored an invalid discovery message: ${reasonOf(e.error)}`;
    case 'problem':
      return `problem: ${e.message}`;
    case 'error':
      return `error: ${reasonOf(e.error)}`;
    default:
      return undefined;
  }
}

/**
 * What happened to a participant process, in words; undefined for what is not worth a line (an expected exit).
 * `node`: the graph node the process runs for, when the reader knows the graph by its nodes (the FBP runtime).
 */
export function describeProcessEvent(e: ProcessEvent, node?: string): string | undefined {
  switch (e.type) {
    case 'started':
      return `started ${e.role} (pid ${e.pid}): ${e.command.join(' ')}`;
    case 'exited': {
      if (e.expected) return undefined;
      const how = `exited unexpectedly (${e.signal ?? `code ${e.code}`})`;
      return node === undefined ? `${e.role} ${how}` : `participant process ${e.role} (node '${node}') ${how}`;
    }
    case 'restarting':
      return `restarting ${e.role} in ${e.inMs} ms (restart ${e.restarts})`;
    case 'gave-up':
      return `${e.error.code}: ${e.error.message}`;
    case 'spawn-error':
      return `cannot start ${e.role}: ${e.error.message}`;
    case 'unlaunchable':
      return `no command for component '${e.component}' (node '${e.node}') in the library; waiting for it to announce itself. Known components: ${e.known.join(', ') || '(none)'}`;
    case 'process-error':
      return `${e.role}: ${reasonOf(e.error)}`;
  }
}

/** Whether an event is about a participant process (see ProcessEvent). */
export function isProcessEvent(e: NetworkEvent): e is ProcessEvent {
  return PROCESS_EVENTS.has(e.type);
}

const PROCESS_EVENTS = new Set<string>(['started', 'exited', 'restarting', 'gave-up', 'spawn-error', 'unlaunchable', 'process-error']);

/** A network event in words (the embedded broker and the connection are the caller's to word). */
export function describeNetworkEvent(e: NetworkEvent): string | undefined {
  if (isProcessEvent(e)) return describeProcessEvent(e);
  if (e.type === 'embedded-broker' || e.type === 'connected') return undefined;
  return describeCoordinatorEvent(e);
}

/**
 * The trace sub-protocol's recorder: while a graph is traced, the network events of that graph (packets that
 * crossed its edges, IIPs, start/stop, errors) are kept in a bounded buffer and dumped as a Flowtrace
 * (https://github.com/flowbased/flowtrace): `{header: {metadata, graphs, main}, events: [...]}`.
 */
import type { GraphJson } from 'fbp-graph/lib/Types.js';

export interface TraceEvent {
  protocol: string;
  command: string;
  payload: Record<string, unknown>;
  graph: string;
  time: string;
}

/** Default buffer size in bytes (the protocol's `buffersize` is in bytes too). */
export const DEFAULT_TRACE_BUFFER = 1024 * 1024;

export class TraceBuffer {
  readonly graph: string;
  readonly bufferSize: number;
  readonly startedAt = new Date();
  private events: Array<{ event: TraceEvent; size: number }> = [];
  private bytes = 0;
  /** Recording (trace:start … trace:stop); a stopped trace keeps its events for trace:dump. */
  recording = true;

  constructor(graph: string, bufferSize = DEFAULT_TRACE_BUFFER) {
    this.graph = graph;
    this.bufferSize = bufferSize > 0 ? bufferSize : DEFAULT_TRACE_BUFFER;
  }

  record(protocol: string, command: string, payload: Record<string, unknown>): void {
    if (!this.recording) return;
    const event: TraceEvent = { protocol, command, payload: structuredClone(payload), graph: this.graph, time: new Date().toISOString() };
    let size: number;
    try {
      size = Buffer.byteLength(JSON.stringify(event));
    } catch {
      event.payload = { ...payload, data: `DATA ${typeof payload.data}` };
      size = Buffer.byteLength(JSON.stringify(event));
    }
    this.events.push({ event, size });
    this.bytes += size;
    // Oldest first out; the newest event is always kept.
    while (this.bytes > this.bufferSize && this.events.length > 1) this.bytes -= this.events.shift()!.size;
  }

  clear(): void {
    this.events = [];
    this.bytes = 0;
  }

  get length(): number {
    return this.events.length;
  }

  /** The Flowtrace document. */
  toFlowtrace(metadata: Record<string, unknown>, graph: GraphJson | undefined): Record<string, unknown> {
    return {
      header: {
        metadata: { ...metadata, start: this.startedAt.toISOString(), end: new Date().toISOString() },
        graphs: graph ? { [this.graph]: graph } : {},
        main: this.graph,
      },
      events: this.events.map((e) => e.event),
    };
  }
}

/**
 * The trace sub-protocol: `start` records the network events of a graph (every packet that crosses one of its
 * edges while it is live, IIPs, start/stop, errors) in a buffer of `buffersize` bytes; `stop` stops recording;
 * `clear` empties the buffer; `dump` returns it as a Flowtrace (type flowtrace.json).
 */
import { graphToJson } from '../../graph/json.js';
import { GRAPH_NOT_FOUND, PlainProtocolError, type HandlerContext, type Payload, type ProtocolHandlers } from '../context.js';
import type { GraphDocument } from '../graph-doc.js';
import { TraceBuffer } from '../trace.js';

function docOf(ctx: HandlerContext, payload: Payload): GraphDocument {
  const doc = ctx.runtime.graphs.get(String(payload.graph));
  if (!doc) throw new PlainProtocolError(GRAPH_NOT_FOUND);
  return doc;
}

export const traceHandlers: ProtocolHandlers = {
  start(ctx, payload) {
    const doc = docOf(ctx, payload);
    const size = typeof payload.buffersize === 'number' ? payload.buffersize : undefined;
    const existing = ctx.runtime.traces.get(doc.id);
    if (existing && (size === undefined || size === existing.bufferSize)) existing.recording = true;
    else ctx.runtime.traces.set(doc.id, new TraceBuffer(doc.id, size));
    ctx.runtime.updateTracing();
    const echo: Payload = { graph: doc.id };
    if (size !== undefined) echo.buffersize = size;
    ctx.reply('start', echo);
  },

  stop(ctx, payload) {
    const doc = docOf(ctx, payload);
    const trace = ctx.runtime.traces.get(doc.id);
    if (trace) trace.recording = false;
    ctx.runtime.updateTracing();
    ctx.reply('stop', { graph: doc.id });
  },

  clear(ctx, payload) {
    const doc = docOf(ctx, payload);
    ctx.runtime.traces.get(doc.id)?.clear();
    ctx.reply('clear', { graph: doc.id });
  },

  dump(ctx, payload) {
    const doc = docOf(ctx, payload);
    const trace = ctx.runtime.traces.get(doc.id) ?? Object.assign(new TraceBuffer(doc.id), { recording: false });
    const flowtrace = trace.toFlowtrace(ctx.runtime.traceMetadata(), graphToJson(doc.toGraph()));
    ctx.reply('dump', { graph: doc.id, type: 'flowtrace.json', flowtrace: JSON.stringify(flowtrace) });
  },
};

/**
 * The network sub-protocol. One graph is live at a time (see live.ts for what start and stop mean on the
 * broker): `start` makes the graph live if it is not, binds its edges and sends its IIPs; `stop` removes the
 * edges (participants keep running); `getstatus`; `edges` (which edges' packets are reported as network:data);
 * `debug` (report what participants send on their error outports as network:processerror). `persist` is not
 * offered (no network:persist capability).
 */
import { GRAPH_NOT_FOUND, PlainProtocolError, type HandlerContext, type Payload, type ProtocolHandlers } from '../context.js';
import type { GraphDocument } from '../graph-doc.js';
import { refOf } from '../graph-doc.js';

function docOf(ctx: HandlerContext, payload: Payload): GraphDocument {
  const doc = ctx.runtime.graphs.get(String(payload.graph));
  if (!doc) throw new PlainProtocolError(GRAPH_NOT_FOUND);
  return doc;
}

/** network:status payload (exactly the keys fbp-test expects: no uptime). */
export function statusPayload(ctx: HandlerContext, graph: string): Payload {
  const live = ctx.runtime.live;
  const isLive = live.isLive(graph);
  const out: Payload = { graph, running: isLive && live.running, started: isLive && live.isStarted };
  if (isLive && live.debugging) out.debug = true;
  return out;
}

export const networkHandlers: ProtocolHandlers = {
  start(ctx, payload) {
    const doc = docOf(ctx, payload);
    const rt = ctx.runtime;
    rt.makeLive(doc);
    rt.live.start();
    const started: Payload = { time: new Date().toISOString(), graph: doc.id, started: true, running: rt.live.running };
    ctx.broadcast('started', started);
    rt.traceEvent(doc.id, 'network', 'started', started);
  },

  stop(ctx, payload) {
    const doc = docOf(ctx, payload);
    const live = ctx.runtime.live;
    const uptime = live.isLive(doc.id) ? live.uptime() : 0;
    if (live.isLive(doc.id)) live.stop();
    const stopped: Payload = { time: new Date().toISOString(), uptime, graph: doc.id, running: false, started: false };
    ctx.broadcast('stopped', stopped);
    ctx.runtime.traceEvent(doc.id, 'network', 'stopped', stopped);
  },

  getstatus(ctx, payload) {
    const doc = docOf(ctx, payload);
    ctx.reply('status', statusPayload(ctx, doc.id));
  },

  edges(ctx, payload) {
    const doc = docOf(ctx, payload);
    const edges = (payload.edges as Array<{ src: unknown; tgt: unknown }>).map((e) => ({ src: refOf(e.src), tgt: refOf(e.tgt) }));
    ctx.runtime.selectEdges(doc.id, edges);
    ctx.broadcast('edges', { graph: doc.id, edges: payload.edges });
  },

  debug(ctx, payload) {
    const doc = docOf(ctx, payload);
    ctx.runtime.setDebug(doc.id, payload.enable === true);
    // The schemas define no network:debug reply; the status carries the new debug flag.
    ctx.reply('status', statusPayload(ctx, doc.id));
  },
};

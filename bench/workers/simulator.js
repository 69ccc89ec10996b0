// Simulated participants for the coordinator-scale workload: `count` msgflo-ts participants (one connection),
// each announcing itself every `heartbeat` seconds, spread evenly over the interval. The first roles are the nodes
// of the bench graph (`n0`…), the others are roles the graph does not use.
//
//   node bench/workers/simulator.js '{"url": "…", "prefix": "P", "count": 1000, "graphRoles": 100, "heartbeat": 1}'
//
// On MQTT it also does what a real msgflo-ts participant does when a binding record names one of its inqueues:
// it says it follows the edge (msgflo/following/<tgt>/<src>), which the coordinator waits for.
// Commands: stats → {announced, failed}; stop (a goodbye for every participant, then exit).
import mqtt from 'mqtt';
import { connectTransport, discoveryMessage } from '../../dist/index.js';
import { onStop, serve, toHarness, workerArgs } from './common.js';

const opts = workerArgs();
const heartbeat = opts.heartbeat ?? 1;
const transport = await connectTransport(opts.url, { name: `${opts.prefix}sim` });

const infos = [];
for (let i = 0; i < opts.count; i++) {
  const role = i < opts.graphRoles ? `${opts.prefix}n${i}` : `${opts.prefix}x${i}`;
  infos.push({
    id: `${role}-${i.toString(16).padStart(8, '0')}-sim`,
    role,
    component: 'BenchNode',
    inports: [{ id: 'in', type: 'any', queue: `${role}.IN`, hidden: false }],
    outports: [{ id: 'out', type: 'any', queue: `${role}.OUT`, hidden: false }],
    heartbeat,
    library: 'msgflo-ts@0.1.0',
  });
}

let announced = 0;
let failed = 0;
const SLICE_MS = 10;
const perSlice = Math.max(1, Math.ceil((opts.count * SLICE_MS) / (heartbeat * 1000)));
let next = 0;
const timer = setInterval(() => {
  for (let k = 0; k < perSlice; k++) {
    const info = infos[next];
    next = (next + 1) % infos.length;
    transport.announce(discoveryMessage(info), { ttlMs: 10_000 }).then(
      () => announced++,
      () => failed++,
    );
  }
}, SLICE_MS);

let follower;
if (transport.scheme === 'mqtt') {
  // Say that the inqueue's reader follows each new binding record, as msgflo-ts participants do.
  follower = await mqtt.connectAsync(opts.url, { clean: true, reconnectPeriod: 0, clientId: `${opts.prefix}simf-${process.pid}` });
  follower.on('message', (topic, payload) => {
    if (payload.length === 0) return;
    const [, , tgt, src] = topic.split('/');
    if (!tgt || !src || tgt.startsWith('~') || src.startsWith('~')) return;
    // Only our own roles: other people's coordinators on a shared broker must not hear from us.
    if (!decodeURIComponent(tgt).startsWith(opts.prefix)) return;
    follower.publish(`msgflo/following/${tgt}/${src}`, JSON.stringify({ tgt: decodeURIComponent(tgt), src: decodeURIComponent(src) }), { qos: 1 });
  });
  await follower.subscribeAsync('msgflo/bindings/+/+', { qos: 1 });
}

const stop = onStop(async () => {
  clearInterval(timer);
  await Promise.allSettled(infos.map((info) => transport.announce(discoveryMessage({ ...info, leaving: true }))));
  await follower?.endAsync().catch(() => undefined);
  await transport.close();
});
serve({ stats: () => ({ announced, failed }), stop: () => void stop() });
toHarness({ type: 'ready' });

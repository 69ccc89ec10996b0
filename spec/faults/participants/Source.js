// Fault-suite source: each input {from, count} makes it send {n} for every n in [from, from + count) on `out`.
// The input is acked only once all of them are confirmed by the broker, so a chunk is never half-sent silently:
// either every number of it is on its way, or the chunk is redelivered (at-least-once).
import { defineParticipant } from 'msgflo-ts';

export default defineParticipant({
  component: 'FaultSource',
  label: 'Sends numbered messages, a chunk per input',
  inports: [
    {
      id: 'in',
      type: 'object',
      schema: {
        type: 'object',
        required: ['from', 'count'],
        properties: { from: { type: 'integer' }, count: { type: 'integer', minimum: 0, maximum: 100000 } },
      },
    },
  ],
  outports: [{ id: 'out', type: 'object' }],
  process: (port, data, send) => {
    const { from, count } = data;
    for (let n = from; n < from + count; n++) send('out', { n });
  },
});

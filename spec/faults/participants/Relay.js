// Fault-suite hop: forwards {n, …} with its hop count `h` incremented and its pid appended to `p` (the path), so
// the sink can tell that a message went through every hop and, for a duplicate, which instances handled it.
import { defineParticipant } from 'msgflo-ts';

export default defineParticipant({
  component: 'FaultRelay',
  label: 'Forwards numbered messages, counting hops',
  inports: [{ id: 'in', type: 'object' }],
  outports: [{ id: 'out', type: 'object' }],
  process: (port, data, send) => {
    const path = Array.isArray(data.p) ? data.p : [];
    send('out', { ...data, h: (Number(data.h) || 0) + 1, p: [...path, process.pid] });
  },
});

// Prints every input on stdout (as msgflo's examples did) and passes it on.
import { defineParticipant } from 'msgflo-ts';

export default defineParticipant({
  component: 'Print',
  label: 'Prints its input and forwards it',
  icon: 'print',
  inports: [{ id: 'in', type: 'any' }],
  outports: [{ id: 'out', type: 'any' }],
  process: (port, data, send, meta) => {
    process.stdout.write(`PRINT[${meta.role}] ${JSON.stringify(data)}\n`);
    send('out', data);
  },
});

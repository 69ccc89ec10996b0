// Repeats its input unchanged: the "hello world" of msgflo.
import { defineParticipant } from 'msgflo-ts';

export default defineParticipant({
  component: 'Repeat',
  label: 'Repeats in data without changes',
  icon: 'file-word-o',
  inports: [{ id: 'in', type: 'any' }],
  outports: [{ id: 'out', type: 'any' }],
  process: (port, data, send) => send('out', data),
});

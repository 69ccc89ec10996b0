// A transform written in TypeScript: upper-cases strings, including every string inside objects and arrays.
// Ports are typed: send('outt', …) would not compile.
import { defineParticipant } from 'msgflo-ts';

function upper(value: unknown): unknown {
  if (typeof value === 'string') return value.toUpperCase();
  if (Array.isArray(value)) return value.map(upper);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, upper(v)]));
  }
  return value;
}

export default defineParticipant({
  component: 'Uppercase',
  label: 'Upper-cases every string in its input',
  icon: 'font',
  inports: [{ id: 'in', type: 'any', description: 'string, or JSON holding strings' }],
  outports: [{ id: 'out', type: 'any' }],
  process: (port, data, send) => send('out', upper(data)),
});

// Takes every input and sends nothing: a sink that only acknowledges.
import { defineParticipant } from 'msgflo-ts';

export default defineParticipant({
  component: 'Drop',
  label: 'Drops every packet it receives',
  icon: 'trash-o',
  inports: [{ id: 'in', type: 'any' }],
  outports: [],
  process: () => {},
});

// The chart of miros's "spy and trace across a network" example, as a statechart participant:
//
//   +-------- producer_outer ---------+
//   |   +--- c1 ----+   +---- c2 ---+ |
//   | * |           |   |           | +--+
//   | | |           +-A->           | |  |
//   | +->           <-A-+           | |  B
//   |   |           |   |           | <--+
//   |   +-----------+   +-----------+ |
//   +---------------------------------+
//
// A message on inport `A` toggles c1/c2; one on `B` leaves producer_outer and enters it again (then c1). Each
// state entered is reported on outport `state`. Run with spy and trace on and watch it with msgflo-trace:
//   msgflo-participant participants/Producer.ts --name producer --spy --trace
import { defineStatechartParticipant, setup } from 'msgflo-ts';

export default defineStatechartParticipant({
  component: 'Producer',
  label: 'The producer_outer/c1/c2 chart of the miros networked-instrumentation example',
  icon: 'sitemap',
  inports: [
    { id: 'A', type: 'bang', description: 'toggles c1 and c2' },
    { id: 'B', type: 'bang', description: 'leaves producer_outer and enters it again' },
  ],
  outports: [{ id: 'state', type: 'string', description: 'each state entered' }],
  machine: ({ send }) =>
    setup({}).createMachine({
      id: 'producer',
      initial: 'producer_outer',
      states: {
        producer_outer: {
          initial: 'c1',
          on: { B: { target: 'producer_outer', reenter: true } },
          states: {
            c1: { entry: send('state', 'c1'), on: { A: 'c2' } },
            c2: { entry: send('state', 'c2'), on: { A: 'c1' } },
          },
        },
      },
    }),
});

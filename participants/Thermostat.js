// A statechart participant with parallel regions, guards and a delayed transition:
//
//   power:   off <-> on                      (inport `power`: true/false)
//   heating: idle <-> heating                (only while power is on; guards compare with the setpoint)
//   sensor:  fresh -(5 s without a temperature)-> stale, which raises an alarm
//
// Inports: `temperature` (number), `setpoint` (number, 5..35; anything else makes the chart throw: the input goes
// to the `error` outport and is dead-lettered), `power` (boolean). Outports: `heater` (true/false when it
// changes), `alarm` (text).
import { and, assign, defineStatechartParticipant, not, setup, stateIn } from 'msgflo-ts';

const STALE_AFTER_MS = Number(process.env.THERMOSTAT_STALE_MS ?? 5000);

export default defineStatechartParticipant({
  component: 'Thermostat',
  label: 'Switches a heater around a setpoint; alarms when the sensor goes quiet',
  icon: 'thermometer-half',
  inports: [
    { id: 'temperature', type: 'number', schema: { type: 'number' } },
    { id: 'setpoint', type: 'number' },
    { id: 'power', type: 'boolean', schema: { type: 'boolean' } },
  ],
  outports: [
    { id: 'heater', type: 'boolean' },
    { id: 'alarm', type: 'string' },
  ],
  machine: ({ send }) =>
    setup({
      guards: {
        switchOn: ({ event }) => event.data === true,
        tooCold: ({ context, event }) => event.data < context.setpoint - 0.5,
        warmEnough: ({ context, event }) => event.data > context.setpoint + 0.5,
      },
      actions: {
        setSetpoint: assign({
          setpoint: ({ event }) => {
            const v = event.data;
            if (typeof v !== 'number' || v < 5 || v > 35) throw new Error(`setpoint must be a number from 5 to 35, got ${JSON.stringify(v)}`);
            return v;
          },
        }),
      },
    }).createMachine({
      id: 'thermostat',
      type: 'parallel',
      context: { setpoint: 20 },
      on: { setpoint: { actions: 'setSetpoint' } },
      states: {
        power: {
          initial: 'off',
          states: {
            off: { on: { power: { guard: 'switchOn', target: 'on' } } },
            on: { on: { power: { guard: not('switchOn'), target: 'off' } } },
          },
        },
        heating: {
          initial: 'idle',
          states: {
            idle: {
              on: { temperature: { guard: and([stateIn('#thermostat.power.on'), 'tooCold']), target: 'heating' } },
            },
            heating: {
              entry: send('heater', true),
              exit: send('heater', false),
              on: {
                temperature: { guard: 'warmEnough', target: 'idle' },
                power: { guard: not('switchOn'), target: 'idle' },
              },
            },
          },
        },
        sensor: {
          initial: 'fresh',
          states: {
            fresh: { after: { [STALE_AFTER_MS]: 'stale' }, on: { temperature: { target: 'fresh', reenter: true } } },
            stale: {
              entry: send('alarm', `no temperature for ${STALE_AFTER_MS / 1000} s`),
              on: { temperature: 'fresh' },
            },
          },
        },
      },
    }),
});

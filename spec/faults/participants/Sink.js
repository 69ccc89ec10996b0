// Fault-suite sink: appends one line per input to MSGFLO_FAULTS_SINK_DIR/<role>-<pid>.ndjson before the input is
// acked: {"n", "h" (hops), "p" (pids on the path), "id" (message id), "r" (redelivered)}. The test reads these
// files to find lost and duplicated numbers.
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { defineParticipant } from 'msgflo-ts';

const dir = process.env.MSGFLO_FAULTS_SINK_DIR;
let file;

export default defineParticipant({
  component: 'FaultSink',
  label: 'Records the numbers it receives',
  inports: [{ id: 'in', type: 'object' }],
  outports: [],
  process: (port, data, send, meta) => {
    if (!file) {
      // Inputs can arrive before start() runs: make the file on first use.
      if (!dir) throw new Error('MSGFLO_FAULTS_SINK_DIR is not set');
      mkdirSync(dir, { recursive: true });
      file = path.join(dir, `${meta.role}-${process.pid}.ndjson`);
    }
    const line = { n: data.n, h: data.h, p: data.p, id: meta.id, r: meta.redelivered ? 1 : 0 };
    appendFileSync(file, `${JSON.stringify(line)}\n`);
  },
});

/**
 * Named points between the engine's writes, where the fault-injection suite (test/faults/)
 * stops the process as a power cut or `kill -9` would: FACEDISTILL_FAULT=<point>@<step>
 * SIGKILLs the process when it reaches that point at that step; <point>@<step>:enospc makes
 * the write there fail as on a full disk. Unset (always, outside the tests), a point does nothing.
 */
export const FAULT_POINTS = [
  'checkpoint:metrics-synced', // metrics.jsonl durable up to the step, nothing of the checkpoint written
  'checkpoint:tensors-written', // tensors.bin in the temporary folder
  'checkpoint:state-written', // state.json too
  'checkpoint:manifest-written', // manifest.json too: the temporary folder is complete
  'checkpoint:renamed', // the folder has its final name, latest.json still names the previous one
  'checkpoint:latest-written', // latest.json names it, older ones not yet pruned
] as const;
export type FaultPoint = (typeof FAULT_POINTS)[number];

const armed = process.env.FACEDISTILL_FAULT;

export function faultPoint(point: FaultPoint, step: number): void {
  if (armed === undefined) return;
  if (armed === `${point}@${step}`) process.kill(process.pid, 'SIGKILL');
  if (armed === `${point}@${step}:enospc`) throw Object.assign(new Error(`ENOSPC: no space left on device (injected at ${point})`), { code: 'ENOSPC' });
}

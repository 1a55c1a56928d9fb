/**
 * trace.log across threads (capture/engines/kvm/trace-channel.ts): a worker records step events into the
 * shared ring as the KVM engine's vCPU thread does, the main thread formats and writes them, and the file
 * must be byte for byte what a TraceWriter writes in one thread: over several turns of the ring, with a
 * comment between batches, more address tails than the arena's first size, and a main thread that drains
 * late, so the worker has to wait for a free slot. Runs the compiled worker side, as the capture does.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { expect, it } from 'vitest';
import { ROOT } from './helpers.js';

type Channel = typeof import('../capture/engines/kvm/trace-channel.js');
type Writer = typeof import('../capture/trace-writer.js');
const channel = (await import(`${ROOT}/dist/capture/engines/kvm/trace-channel.js`)) as Channel;
const { TraceWriter, BATCH } = (await import(`${ROOT}/dist/capture/trace-writer.js`)) as Writer;

/** Events: 3 turns of the ring and a partial batch; 20,000 distinct addresses (~1 MB of tails). */
const EVENTS = channel.RING_BATCHES * BATCH * 3 + 123;
const ADDRESSES = 20_000;
const COMMENT_AT = 5 * BATCH + 7;

/** The events and comments both sides record, as a module body (run in the worker and here). */
const RECORD = `
  const describe = (a) => 'fn_' + (a % 997n).toString() + ' + ' + (a & 0xfffn).toString() + ' in section .text';
  let s = 12345;
  const next = () => { s = (Math.imul(s, 1103515245) + 12345) | 0; return (s >>> 8) % ${ADDRESSES}; };
  function record(w) {
    w.comment('engine: test\\nsecond line');
    for (let k = 0; k < ${EVENTS}; k++) {
      if (k === ${COMMENT_AT}) w.comment('in the middle');
      const a = next();
      if (k % 3 === 0) w.event(k * 7.25, 1, 0xffffffff, 0x81000000 + a * 4);
      else w.event(k, 0, 0, 0x400000 + a);
    }
    w.close();
  }
`;

it('writes what a TraceWriter writes in one thread, across ring turns, a late drain and a comment between batches', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boot-trace-channel-'));
  try {
    const reference = join(dir, 'reference.log');
    new Function('TraceWriter', 'file', `${RECORD}; record(new TraceWriter(file, describe));`)(TraceWriter, reference);

    const ch = channel.createTraceChannel();
    const out = join(dir, 'trace.log');
    let failures = 0;
    const receiver = new channel.TraceReceiver(out, ch, () => failures++);
    const worker = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       (async () => {
         const { ringSink } = await import(workerData.root + '/dist/capture/engines/kvm/trace-channel.js');
         const { TraceWriter } = await import(workerData.root + '/dist/capture/trace-writer.js');
         ${RECORD}
         record(new TraceWriter(ringSink(workerData.ch, (m) => parentPort.postMessage(m)), describe));
         parentPort.postMessage({ type: 'done' });
       })();`,
      { eval: true, workerData: { root: ROOT, ch } },
    );
    const done = new Promise<void>((resolve, reject) => {
      worker.on('message', (m: { type: string }) => {
        if (m.type === 'trace-text') receiver.text(m as Parameters<typeof receiver.text>[0]);
        else if (m.type === 'done') resolve();
      });
      worker.on('error', reject);
    });
    // Nothing is drained for a while (but the batches before the comment in the middle, which its message
    // writes): the worker fills the ring and waits for a free slot.
    await new Promise((r) => setTimeout(r, 1500));
    const early = channel.channelCounts(ch);
    expect(early.published - early.written).toBe(channel.RING_BATCHES);
    const timer = setInterval(() => receiver.drain(), 2);
    await done;
    clearInterval(timer);
    receiver.close();
    expect(receiver.error).toBeUndefined();
    expect(failures).toBe(0);
    // Batches: the first (64 events), those up to the comment in the middle (which ends one early), the rest.
    expect(channel.channelCounts(ch).written).toBe(Math.ceil((EVENTS - COMMENT_AT) / BATCH) + 1 + Math.ceil((COMMENT_AT - 64) / BATCH));
    const got = readFileSync(out);
    const want = readFileSync(reference);
    expect(got.length).toBe(want.length);
    expect(got.equals(want)).toBe(true);
    expect(want.toString('latin1').split('\n').length).toBe(EVENTS + 4);
  } finally {
    if (!process.env.KEEP) rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

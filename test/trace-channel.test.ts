/**
 * trace.log across threads (capture/engines/kvm/trace-channel.ts): a worker records step events into the
 * shared ring as the KVM engine's vCPU thread does, the main thread formats and writes them, and the file
 * must be byte for byte what a TraceWriter writes in one thread: over several turns of the ring, with
 * comments before and between batches (one longer than a slot), more address tails than the arena's first
 * size, a main thread that drains from the start and one that drains late, so the worker has to wait for a
 * free slot. Runs the compiled worker side, as the capture does.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
      if (k === ${COMMENT_AT}) w.comment('in the middle\\n' + 'x'.repeat(40000));
      const a = next();
      if (k % 3 === 0) w.event(k * 7.25, 1, 0xffffffff, 0x81000000 + a * 4);
      else w.event(k, 0, 0, 0x400000 + a);
    }
    w.close();
  }
`;

/**
 * Records RECORD's events in a worker through the ring and writes them to `out` here. `late`: nothing is drained
 * until the worker has filled the ring and waits. Before close(), a last drain must have put everything in the
 * file (each drain writes it out). Returns the counts seen while the ring was full (late) and at the end.
 */
async function throughRing(out: string, late: boolean): Promise<{ full?: { published: number; written: number }; written: number; beforeClose: Buffer }> {
  const ch = channel.createTraceChannel();
  let failures = 0;
  const receiver = new channel.TraceReceiver(out, ch, () => failures++);
  receiver.drain();
  expect(existsSync(out), 'no file before the first batch').toBe(false);
  const worker = new Worker(
    `const { workerData, parentPort } = require('node:worker_threads');
     (async () => {
       const { ringSink } = await import(workerData.root + '/dist/capture/engines/kvm/trace-channel.js');
       const { TraceWriter } = await import(workerData.root + '/dist/capture/trace-writer.js');
       ${RECORD}
       record(new TraceWriter(ringSink(workerData.ch), describe));
       parentPort.postMessage('done');
     })();`,
    { eval: true, workerData: { root: ROOT, ch } },
  );
  const done = new Promise<void>((resolve, reject) => {
    worker.on('message', () => resolve());
    worker.on('error', reject);
  });
  let full: { published: number; written: number } | undefined;
  if (late) {
    // Wait (however slow the machine) until the ring is full, then see that the worker publishes nothing more.
    const until = Date.now() + 30_000;
    while (channel.channelCounts(ch).published < channel.RING_BATCHES && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 300));
    full = channel.channelCounts(ch);
  }
  const timer = setInterval(() => receiver.drain(), 2);
  await done;
  clearInterval(timer);
  receiver.drain();
  const beforeClose = readFileSync(out);
  receiver.close();
  expect(receiver.error).toBeUndefined();
  expect(failures).toBe(0);
  return { ...(full ? { full } : {}), written: channel.channelCounts(ch).written, beforeClose };
}

it('writes what a TraceWriter writes in one thread: drained from the start, and drained late with the ring full', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boot-trace-channel-'));
  try {
    const reference = join(dir, 'reference.log');
    new Function('TraceWriter', 'file', `${RECORD}; record(new TraceWriter(file, describe));`)(TraceWriter, reference);
    const want = readFileSync(reference);
    expect(want.toString('latin1').split('\n').length).toBe(EVENTS + 5);

    const soon = await throughRing(join(dir, 'soon.log'), false);
    expect(readFileSync(join(dir, 'soon.log')).equals(want)).toBe(true);
    expect(soon.beforeClose.equals(want), 'a drain writes what it formatted to the file').toBe(true);

    const late = await throughRing(join(dir, 'late.log'), true);
    expect(late.full).toEqual({ published: channel.RING_BATCHES, written: 0 });
    expect(readFileSync(join(dir, 'late.log')).equals(want)).toBe(true);
    // Slots: the header, the first batch (64 events), those up to the middle comment (which ends one early),
    // the comment (two slots: longer than one), the rest.
    const slotBytes = BATCH * 16;
    const middle = Buffer.byteLength('# in the middle\n# ' + 'x'.repeat(40000) + '\n');
    expect(late.written).toBe(1 + 1 + Math.ceil((COMMENT_AT - 64) / BATCH) + Math.ceil(middle / slotBytes) + Math.ceil((EVENTS - COMMENT_AT) / BATCH));
    expect(soon.written).toBe(late.written);
  } finally {
    if (!process.env.KEEP) rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

it('keeps an error that is not the disk\'s as it was thrown (an internal error), stops once, and goes on emptying the ring', () => {
  const dir = mkdtempSync(join(tmpdir(), 'boot-trace-channel-'));
  try {
    const ch = channel.createTraceChannel();
    let failures = 0;
    const receiver = new channel.TraceReceiver(join(dir, 'trace.log'), ch, () => failures++);
    // A worker's sink that publishes two batches whose events name an address tail it never sent.
    const sink = channel.ringSink(ch);
    const events = sink.first();
    events[0] = 1;
    events[1] = 7;
    sink.batch([], sink.batch([], events, 1), 1);
    receiver.drain();
    expect(receiver.error).toBeInstanceOf(Error);
    expect(receiver.error!.constructor.name).not.toBe('UserError');
    expect(failures).toBe(1);
    expect(channel.channelCounts(ch)).toEqual({ published: 2, written: 2 });
    receiver.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

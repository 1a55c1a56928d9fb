/**
 * The GDB remote protocol client against a small fake stub on 127.0.0.1 written here (its framing,
 * escaping and run-length encoding are coded independently of capture/engines/qemu/gdb-remote.ts), and the
 * pure helpers on known packets.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { hex2, startStub, type Stub } from './gdb-stub-fixture.js';
import {
  checksum, decodeRle, frame, FrameParser, GdbClosedError, GdbRemote, GdbTimeoutError, hexLe, parseStopReply, unescapeBinary, type Frame,
} from '../capture/engines/qemu/gdb-remote.js';

describe('packet helpers', () => {
  it('checksums as the sum of the bytes mod 256', () => {
    expect(checksum('OK')).toBe(0x9a); // the well-known "$OK#9a"
    expect(checksum('')).toBe(0);
    expect(checksum(Buffer.from([0xff, 0xff, 0x03]))).toBe(0x01);
  });

  it('frames with $...#cs and escapes $ # } * as } + (byte ^ 0x20)', () => {
    expect(frame('g').toString('latin1')).toBe('$g#67');
    const f = frame('a$b#c}d*e').toString('latin1');
    expect(f.slice(0, -3)).toBe('$a}\x04b}\x03c}]d}\x0ae');
    expect(f.slice(-3)).toBe(`#${checksum(f.slice(1, -3)).toString(16).padStart(2, '0')}`);
  });

  it('undoes run-length encoding and binary escapes', () => {
    expect(decodeRle('0* ')).toBe('0000'); // ' ' = 32: 3 more
    expect(decodeRle('a*"b')).toBe('aaaaaab'); // '"' = 34: 5 more
    expect(decodeRle('ff*!00')).toBe('ffffff00');
    expect(decodeRle('plain')).toBe('plain');
    expect(unescapeBinary('x}\x03y}]z')).toBe('x#y}z');
  });

  it('parses stop replies with inline registers and info pairs', () => {
    const s = parseStopReply('T05thread:p01.01;10:41ce0483ffffffff;swbreak:;')!;
    expect(s.kind).toBe('T');
    expect(s.signal).toBe(5);
    expect(hexLe(s.registers.get(16)!)).toBe(0xffffffff8304ce41n);
    expect(s.info.get('thread')).toBe('p01.01');
    expect(parseStopReply('W00')).toMatchObject({ kind: 'W', signal: 0 });
    expect(parseStopReply('S02')).toMatchObject({ kind: 'S', signal: 2 });
    expect(parseStopReply('OK')).toBeNull();
    expect(parseStopReply('E01')).toBeNull();
  });

  it('splits a stream cut at any byte into the same frames, and flags bad checksums', () => {
    const stream = Buffer.from(`+$OK#9a-%Stop:T05#${hex2(checksum('Stop:T05'))}$${'0* '}#${hex2(checksum('0* '))}$bad#00+`, 'latin1');
    const whole: Frame[] = [];
    new FrameParser().push(stream, (f) => whole.push(f));
    expect(whole.map((f) => f.type)).toEqual(['ack', 'packet', 'nak', 'notification', 'packet', 'bad', 'ack']);
    expect(whole[1]).toEqual({ type: 'packet', data: 'OK' });
    expect(whole[4]).toEqual({ type: 'packet', data: '0000' });
    for (let cut = 1; cut < stream.length; cut++) {
      const parts: Frame[] = [];
      const p = new FrameParser();
      p.push(stream.subarray(0, cut), (f) => parts.push(f));
      p.push(stream.subarray(cut), (f) => parts.push(f));
      expect(parts.filter((f) => f.type !== 'notification' && f.type !== 'bad')).toEqual(whole.filter((f) => f.type !== 'notification' && f.type !== 'bad'));
    }
  });
});

describe('GdbRemote against a fake stub on 127.0.0.1', () => {
  let stub: Stub | undefined;
  let gdb: GdbRemote | undefined;
  afterEach(async () => {
    gdb?.close();
    await new Promise((r) => stub?.server.close(r));
  });

  const connect = async (): Promise<GdbRemote> => {
    stub = await startStub();
    gdb = await GdbRemote.connect({ host: '127.0.0.1', port: stub.port }, { timeoutMs: 2000, requestTimeoutMs: 1000 });
    return gdb;
  };

  it('acks replies until QStartNoAckMode, then stops', async () => {
    const g = await connect();
    expect(g.acking).toBe(true);
    expect((await g.supported()).get('qXfer:features:read')).toBe('+');
    expect(await g.request('?')).toBe('T05thread:01;');
    await new Promise((r) => setTimeout(r, 20));
    expect(stub!.acksFromClient).toBe(2);
    expect(await g.startNoAck()).toBe(true);
    await new Promise((r) => setTimeout(r, 20));
    const acks = stub!.acksFromClient; // the OK of QStartNoAckMode itself may be acked
    expect(await g.request('?')).toBe('T05thread:01;');
    expect(await g.request('vCont?')).toBe('vCont;c;C;s;S');
    await new Promise((r) => setTimeout(r, 20));
    expect(stub!.acksFromClient).toBe(acks);
  });

  it('reads a chunked, escaped, included target description and numbers its registers', async () => {
    const g = await connect();
    const regs = await g.targetRegisters();
    expect(regs.map((r) => `${r.number}:${r.name}`)).toEqual(['0:rax', '1:rbx', '2:rip', '3:eflags', '40:fs_base']);
    expect(await g.registerNumber('pc', 'rip')).toBe(2);
    expect(stub!.received.filter((p) => p.startsWith('qXfer:features:read:target.xml')).length).toBeGreaterThan(1);
    expect(await g.readXfer('features', 'core.xml')).toContain('<!-- #$}* -->');
  });

  it('decodes run-length encoded register replies', async () => {
    const g = await connect();
    stub!.rip = 0xffffffff81000000n; // little-endian hex "000000" + "81ffffffff": runs the stub encodes
    expect(await g.readRegister(2)).toBe(0xffffffff81000000n);
    const all = await g.readAllRegisters();
    expect(all.length).toBe(32 + 16 + 8);
    expect(hexLe(all.slice(32, 48))).toBe(0xffffffff81000000n);
  });

  it('answers a bad checksum with "-" and takes the resent reply; resends on a "-" from the stub', async () => {
    const g = await connect();
    stub!.corruptNext = true;
    expect(await g.request('?')).toBe('T05thread:01;');
    expect(g.badPackets).toBe(1);
    stub!.nakNext = true;
    expect(await g.request('vCont?')).toBe('vCont;c;C;s;S');
    expect(stub!.received.filter((p) => p === 'vCont?').length).toBe(1);
  });

  it('steps, reading rip from the stop reply when it carries it, else with p', async () => {
    const g = await connect();
    const start = stub!.rip;
    const s1 = await g.resume('vCont;s');
    expect(s1.registers.size).toBe(0);
    expect(await g.readRegister(2)).toBe(start + 3n);
    stub!.inlineRip = true;
    const s2 = await g.resume('s');
    expect(hexLe(s2.registers.get(2)!)).toBe(start + 6n);
  });

  it('reads memory up to a length, or up to the end of the page when the rest is unmapped', async () => {
    const g = await connect();
    stub!.memoryBase = 0xffffffff81000000n;
    stub!.memory = Buffer.from(Array.from({ length: 0x2000 }, (_, i) => i & 0xff));
    expect((await g.readMemoryUpTo(0xffffffff81000010n, 15)).toString('hex')).toBe('101112131415161718191a1b1c1d1e');
    // 5 bytes left on the last mapped page: m with 15 is refused, m with 5 is not
    const end = stub!.memoryBase + 0x2000n - 5n;
    expect((await g.readMemoryUpTo(end, 15)).toString('hex')).toBe('fbfcfdfeff');
    expect(stub!.received.slice(-2)).toEqual([`m${end.toString(16)},f`, `m${end.toString(16)},5`]);
    expect((await g.readMemoryUpTo(stub!.memoryBase + 0x3000n, 15)).length).toBe(0);
    await expect(g.readMemory(end, 15)).rejects.toThrow(/E14/);
  });

  it('takes a W (target exited) in place of a register or memory answer as the end of the session', async () => {
    const g = await connect();
    await g.resume('vCont;s');
    stub!.exitOnRead = true;
    await expect(g.readRegister(2)).rejects.toThrow(GdbClosedError);
    await expect(g.readRegister(2)).rejects.toThrow(GdbClosedError);
  });

  it('falls back to a software breakpoint when Z1 is refused, and continues to it', async () => {
    const g = await connect();
    expect(await g.insertBreakpoint(0xffffffff8304ce41n)).toBe('sw');
    expect(stub!.received).toContain('Z1,ffffffff8304ce41,1');
    expect(stub!.received).toContain('Z0,ffffffff8304ce41,1');
    const stop = await g.resume('c', 1000);
    expect(stop.info.has('hwbreak')).toBe(true);
    await g.removeBreakpoint(0xffffffff8304ce41n, 'sw');
  });

  it('detaches with the process id once multiprocess is agreed, as QEMU wants', async () => {
    const g = await connect();
    expect(await g.detach()).toBe('OK');
    expect(stub!.received.at(-1)).toBe('D');
    await g.supported();
    expect(await g.detach()).toBe('OK');
    expect(stub!.received.at(-1)).toBe('D;1');
  });

  it('interrupts with a raw 0x03 byte', async () => {
    const g = await connect();
    g.interrupt();
    expect(parseStopReply(await g.nextPacket(1000))).toMatchObject({ kind: 'T', signal: 2 });
  });

  it('ends a wait the stub never answers with a timeout, and one on a closed connection at once', async () => {
    const g = await connect();
    const t = performance.now();
    await expect(g.request('qSilent', 150)).rejects.toBeInstanceOf(GdbTimeoutError);
    expect(performance.now() - t).toBeLessThan(1000);
    await g.kill(1000);
    expect(g.isClosed).toBe(true);
    await expect(g.nextPacket(5000)).rejects.toBeInstanceOf(GdbClosedError);
    expect(() => g.send('?')).toThrow(GdbClosedError);
  });

  it('gives up connecting to a port nobody listens on by its deadline', async () => {
    const s = await startStub();
    const port = s.port;
    await new Promise((r) => s.server.close(r));
    const t = performance.now();
    await expect(GdbRemote.connect({ host: '127.0.0.1', port }, { timeoutMs: 200 })).rejects.toBeInstanceOf(GdbTimeoutError);
    expect(performance.now() - t).toBeLessThan(2000);
  });
});

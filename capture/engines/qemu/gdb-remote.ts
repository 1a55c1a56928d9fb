/**
 * A client for the GDB remote serial protocol, enough to single-step a guest through QEMU's gdbstub:
 *
 *   const gdb = await GdbRemote.connect({ path: '/tmp/x/gdb.sock' }, { timeoutMs: 10_000 });
 *   await gdb.startNoAck();                       // QStartNoAckMode: no '+' per packet from here on
 *   const pc = await gdb.registerNumber('rip');   // from the target description (16 on x86-64)
 *   await gdb.request('Z1,ffffffff8304ee41,1');   // 'OK'
 *   const stop = await gdb.resume('c', 60_000);   // { kind: 'T', signal: 5, ... }
 *   await gdb.resume('s'); const rip = await gdb.readRegister64(pc);
 *
 * Framing: `$<data>#<2 hex digit checksum>`, the checksum being the sum of the data bytes mod 256.
 * '}' escapes the next byte (XOR 0x20); `X*n` repeats X (n - 29) more times (run-length encoding,
 * applied by the stub after escaping, so it is undone first here). Until QStartNoAckMode each packet is
 * answered with '+' (good) or '-' (bad checksum: send it again).
 *
 * Every wait has a deadline and ends with a GdbTimeoutError, and a closed socket ends any wait with a
 * GdbClosedError, so nothing here can hang on a stub that died or went silent.
 */
import { connect as netConnect, type Socket } from 'node:net';

export class GdbTimeoutError extends Error {
  override name = 'GdbTimeoutError';
}
export class GdbClosedError extends Error {
  override name = 'GdbClosedError';
}

export type GdbTarget = { path: string } | { host: string; port: number };

/** Sum of the bytes mod 256, as the trailer's two hex digits are. */
export function checksum(data: Uint8Array | string): number {
  let sum = 0;
  if (typeof data === 'string') for (let i = 0; i < data.length; i++) sum += data.charCodeAt(i) & 0xff;
  else for (let i = 0; i < data.length; i++) sum += data[i]!;
  return sum & 0xff;
}

const ESCAPED = new Set([0x24 /* $ */, 0x23 /* # */, 0x7d /* } */, 0x2a /* * */]);

/** The bytes of a packet with `data` (latin1 string or bytes) escaped: `$...#cs`. */
export function frame(data: string | Uint8Array): Buffer {
  const raw = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
  const out: number[] = [0x24];
  let sum = 0;
  for (const b of raw) {
    if (ESCAPED.has(b)) {
      out.push(0x7d, b ^ 0x20);
      sum += 0x7d + (b ^ 0x20);
    } else {
      out.push(b);
      sum += b;
    }
  }
  const cs = (sum & 0xff).toString(16).padStart(2, '0');
  out.push(0x23, cs.charCodeAt(0), cs.charCodeAt(1));
  return Buffer.from(out);
}

/** Undo run-length encoding: `X*n` stands for X followed by (n - 29) more X. */
export function decodeRle(body: string): string {
  if (!body.includes('*')) return body;
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === '*' && i > 0 && i + 1 < body.length) {
      const count = body.charCodeAt(i + 1) - 29;
      out += out[out.length - 1]!.repeat(Math.max(0, count));
      i++;
    } else out += c;
  }
  return out;
}

/** Undo the '}' escapes of binary data (x, qXfer replies). */
export function unescapeBinary(body: string): string {
  if (!body.includes('}')) return body;
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body.charCodeAt(i);
    if (c === 0x7d && i + 1 < body.length) out += String.fromCharCode(body.charCodeAt(++i) ^ 0x20);
    else out += body[i]!;
  }
  return out;
}

/** A target-byte-order (little-endian on x86) hex register value as a number. */
export function hexLe(hex: string): bigint {
  let v = 0n;
  for (let i = hex.length - 2; i >= 0; i -= 2) v = (v << 8n) | BigInt(parseInt(hex.slice(i, i + 2), 16));
  return v;
}

export interface StopReply {
  /** T/S: stopped with a signal; W: exited; X: killed by a signal; O: console output (not a stop). */
  kind: 'T' | 'S' | 'W' | 'X';
  /** The signal (T/S/X) or exit status (W). */
  signal: number;
  /** Register values the stub put in the reply (`10:<hex>;`), by number, as target-order hex. */
  registers: Map<number, string>;
  /** Other `name:value` pairs (thread, watch, swbreak, hwbreak, ...). */
  info: Map<string, string>;
  raw: string;
}

/** Parse a stop reply (`T05thread:p01.01;`, `S05`, `W00`, `X09`); null when `s` is not one. */
export function parseStopReply(s: string): StopReply | null {
  const kind = s[0];
  if ((kind !== 'T' && kind !== 'S' && kind !== 'W' && kind !== 'X') || !/^[0-9a-fA-F]{2}/.test(s.slice(1, 3))) return null;
  const reply: StopReply = { kind, signal: parseInt(s.slice(1, 3), 16), registers: new Map(), info: new Map(), raw: s };
  if (kind === 'T') {
    for (const pair of s.slice(3).split(';')) {
      const colon = pair.indexOf(':');
      if (colon <= 0) continue;
      const key = pair.slice(0, colon);
      const value = pair.slice(colon + 1);
      if (/^[0-9a-fA-F]+$/.test(key)) reply.registers.set(parseInt(key, 16), value);
      else reply.info.set(key, value);
    }
  }
  return reply;
}

/** One thing read from the stream. */
export type Frame =
  | { type: 'ack' }
  | { type: 'nak' }
  | { type: 'packet'; data: string }
  | { type: 'notification'; data: string }
  | { type: 'bad'; raw: string };

/**
 * Splits the byte stream into acks, packets and notifications. `data` is the RLE-decoded body (still
 * escaped: only binary replies are unescaped, by their reader); the checksum is over the bytes as sent.
 */
export class FrameParser {
  private state: 'idle' | 'body' | 'cs1' | 'cs2' = 'idle';
  private body = '';
  private sum = 0;
  private cs = 0;
  private lead = '$';

  push(chunk: Buffer, out: (f: Frame) => void): void {
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      switch (this.state) {
        case 'idle':
          if (b === 0x2b) out({ type: 'ack' });
          else if (b === 0x2d) out({ type: 'nak' });
          else if (b === 0x24 || b === 0x25) {
            this.lead = b === 0x24 ? '$' : '%';
            this.state = 'body';
            this.body = '';
            this.sum = 0;
          }
          // anything else between packets is noise: skipped
          break;
        case 'body': {
          if (b === 0x23) {
            this.state = 'cs1';
            break;
          }
          // Collect runs of plain bytes at once: a 'g' reply is hundreds of bytes.
          let j = i;
          let sum = this.sum;
          while (j < chunk.length && chunk[j] !== 0x23) sum += chunk[j++]!;
          this.body += chunk.toString('latin1', i, j);
          this.sum = sum;
          i = j - 1;
          break;
        }
        case 'cs1':
          this.cs = hexDigit(b) << 4;
          this.state = 'cs2';
          break;
        case 'cs2': {
          this.state = 'idle';
          const cs = this.cs | hexDigit(b);
          if (cs !== (this.sum & 0xff) || hexDigit(b) < 0) out({ type: 'bad', raw: this.body });
          else if (this.lead === '$') out({ type: 'packet', data: decodeRle(this.body) });
          else out({ type: 'notification', data: decodeRle(this.body) });
          this.body = '';
          break;
        }
      }
    }
  }
}

function hexDigit(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x61 && b <= 0x66) return b - 0x57;
  if (b >= 0x41 && b <= 0x46) return b - 0x37;
  return -256;
}

export interface ConnectOptions {
  /** How long to keep retrying the connection (the stub may not listen yet), in ms. */
  timeoutMs: number;
  /** Default deadline of request()/resume() in ms (default 10 s). */
  requestTimeoutMs?: number;
  signal?: AbortSignal;
}

/** A register in the target description. */
export interface TargetRegister {
  name: string;
  number: number;
  bitsize: number;
}

const RETRY_MS = 20;
const ACK = Buffer.from('+');

export class GdbRemote {
  private readonly parser = new FrameParser();
  private readonly queue: string[] = [];
  private waiter: { resolve: (s: string) => void; reject: (e: Error) => void; timer: NodeJS.Timeout | undefined } | null = null;
  private closed: Error | null = null;
  private ackMode = true;
  private lastSent: Buffer | null = null;
  /** A '+' owed for a received packet, sent with the next packet or on the next turn of the event loop. */
  private ackOwed = false;
  private readonly framed = new Map<string, Buffer>();
  /** Packets sent and replies received (for the profile). */
  packetsSent = 0;
  packetsReceived = 0;
  /** Bad-checksum packets received (answered with '-'). */
  badPackets = 0;
  private registersCache: TargetRegister[] | null = null;
  /** Whether both sides said multiprocess+ (then `D` needs the process id: QEMU answers a bare `D` with E22). */
  private multiprocess = false;

  private constructor(private readonly socket: Socket, private readonly requestTimeoutMs: number) {
    socket.on('data', (chunk: Buffer) => this.parser.push(chunk, (f) => this.onFrame(f)));
    const onEnd = (err?: Error): void => {
      if (this.closed) return;
      this.closed = new GdbClosedError(err ? `gdbstub connection lost: ${err.message}` : 'gdbstub closed the connection');
      this.fail(this.closed);
    };
    socket.on('error', (err) => onEnd(err));
    socket.on('close', () => onEnd());
  }

  /** Connect, retrying until `timeoutMs` while the stub is not listening yet. */
  static async connect(target: GdbTarget, o: ConnectOptions): Promise<GdbRemote> {
    const deadline = performance.now() + o.timeoutMs;
    let last: unknown;
    while (performance.now() < deadline) {
      if (o.signal?.aborted) throw new GdbClosedError('aborted before the gdbstub connection was made');
      try {
        const socket = await openSocket(target, deadline - performance.now());
        if ('host' in target) socket.setNoDelay(true);
        return new GdbRemote(socket, o.requestTimeoutMs ?? 10_000);
      } catch (err) {
        last = err;
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    }
    const where = 'path' in target ? target.path : `${target.host}:${target.port}`;
    throw new GdbTimeoutError(`no gdbstub at ${where} after ${o.timeoutMs} ms${last instanceof Error ? ` (${last.message})` : ''}`);
  }

  get acking(): boolean {
    return this.ackMode;
  }

  /** Send a packet and wait for its one reply packet. */
  request(data: string, timeoutMs = this.requestTimeoutMs): Promise<string> {
    this.send(data);
    return this.nextPacket(timeoutMs, data);
  }

  /** Send a packet that gets no reply of its own (e.g. `k` in no-ack mode). */
  send(data: string): void {
    if (this.closed) throw this.closed;
    // The step loop sends the same two packets over and over: frame each once.
    let bytes = this.framed.get(data);
    if (bytes === undefined) {
      bytes = frame(data);
      if (data.length <= 16 && this.framed.size < 64) this.framed.set(data, bytes);
    }
    this.lastSent = bytes;
    this.packetsSent++;
    if (this.ackOwed) {
      // One write (and one wake-up of the stub) instead of two: the ack rides in front of the request.
      this.ackOwed = false;
      this.socket.write(Buffer.concat([ACK, bytes]));
    } else this.socket.write(bytes);
  }

  /** The next reply packet ('O' console-output packets are skipped), within `timeoutMs`. */
  nextPacket(timeoutMs = this.requestTimeoutMs, what = 'reply'): Promise<string> {
    if (this.queue.length > 0) return Promise.resolve(this.queue.shift()!);
    if (this.closed) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      const timer = Number.isFinite(timeoutMs)
        ? setTimeout(() => {
            this.waiter = null;
            reject(new GdbTimeoutError(`gdbstub: no reply to "${what.slice(0, 40)}" within ${timeoutMs} ms`));
          }, timeoutMs)
        : undefined;
      this.waiter = { resolve, reject, timer };
    });
  }

  /** Resume with `s`, `c`, `vCont;s` ... and wait for the stop reply. */
  async resume(command: string, timeoutMs = this.requestTimeoutMs): Promise<StopReply> {
    const reply = await this.request(command, timeoutMs);
    const stop = parseStopReply(reply);
    if (!stop) throw new Error(`gdbstub: "${command}" answered "${reply.slice(0, 60)}", not a stop reply`);
    return stop;
  }

  /** The stop interrupt (a raw 0x03 byte, outside any packet): the stub stops the target and replies with a stop packet. */
  interrupt(): void {
    if (!this.closed) this.socket.write(Buffer.from([0x03]));
  }

  /** Turn acks off (QStartNoAckMode); false when the stub does not support it. */
  async startNoAck(): Promise<boolean> {
    const r = await this.request('QStartNoAckMode');
    if (r !== 'OK') return false;
    this.ackMode = false;
    return true;
  }

  /** `qSupported` features as a map (`PacketSize` -> '1000', `qXfer:features:read` -> '+'). */
  async supported(features = 'multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386;vContSupported+'): Promise<Map<string, string>> {
    const r = await this.request(`qSupported:${features}`);
    const out = new Map<string, string>();
    for (const f of r.split(';')) {
      if (!f) continue;
      const eq = f.indexOf('=');
      if (eq > 0) out.set(f.slice(0, eq), f.slice(eq + 1));
      else if (f.endsWith('+') || f.endsWith('-') || f.endsWith('?')) out.set(f.slice(0, -1), f.slice(-1));
      else out.set(f, '+');
    }
    this.multiprocess = features.includes('multiprocess+') && out.get('multiprocess') === '+';
    return out;
  }

  /** A whole qXfer object (`features`, `target.xml`), read in chunks. */
  async readXfer(object: string, annex: string): Promise<string> {
    let text = '';
    for (;;) {
      const r = await this.request(`qXfer:${object}:read:${annex}:${text.length.toString(16)},ffb`);
      if (r[0] !== 'm' && r[0] !== 'l') throw new Error(`gdbstub: qXfer:${object}:read:${annex} answered "${r.slice(0, 60)}"`);
      text += unescapeBinary(r.slice(1));
      if (r[0] === 'l') return text;
    }
  }

  /**
   * The registers of the target description, numbered as `p`/`g` number them: in document order
   * through the xi:include'd files, a `regnum` attribute restarting the count. Reading target.xml
   * also matters to QEMU: its stub answers `p` only after the client has read it.
   */
  async targetRegisters(): Promise<TargetRegister[]> {
    if (this.registersCache) return this.registersCache;
    const regs: TargetRegister[] = [];
    let next = 0;
    const walk = async (annex: string, depth: number): Promise<void> => {
      if (depth > 4) return;
      const xml = await this.readXfer('features', annex);
      const tags = /<xi:include\s+href="([^"]+)"|<reg\s([^>]*)>/g;
      for (let m = tags.exec(xml); m; m = tags.exec(xml)) {
        if (m[1]) {
          await walk(m[1], depth + 1);
          continue;
        }
        const attrs = m[2]!;
        const name = /\bname="([^"]+)"/.exec(attrs)?.[1];
        const bits = Number(/\bbitsize="(\d+)"/.exec(attrs)?.[1] ?? 0);
        const regnum = /\bregnum="(\d+)"/.exec(attrs)?.[1];
        if (regnum !== undefined) next = Number(regnum);
        if (name) regs.push({ name, number: next, bitsize: bits });
        next++;
      }
    };
    await walk('target.xml', 0);
    this.registersCache = regs;
    return regs;
  }

  /** The number of register `name` in the target description, or null. */
  async registerNumber(...names: string[]): Promise<number | null> {
    const regs = await this.targetRegisters();
    for (const n of names) {
      const r = regs.find((x) => x.name === n);
      if (r) return r.number;
    }
    return null;
  }

  /**
   * A request whose answer may instead be the target's end: a stub sends `W`/`X` when the target exits
   * (QEMU: a guest reset under -no-reboot), which can arrive after a stop reply, in place of the answer
   * to the next request. That ends the session (GdbClosedError) rather than being read as data.
   */
  private async query(data: string): Promise<string> {
    const r = await this.request(data);
    if ((r[0] === 'W' || r[0] === 'X') && parseStopReply(r)) throw new GdbClosedError(`the target ended (${r}) before answering "${data.slice(0, 40)}"`);
    return r;
  }

  /** A register read with `p<n>` (hex number), little-endian. */
  async readRegister(n: number): Promise<bigint> {
    const r = await this.query(`p${n.toString(16)}`);
    if (r === '' || r[0] === 'E' || !/^[0-9a-fA-F]+$/.test(r)) throw new Error(`gdbstub: p${n.toString(16)} answered "${r.slice(0, 40)}"`);
    return hexLe(r);
  }

  /** All registers with `g`, as target-order hex. */
  async readAllRegisters(): Promise<string> {
    const r = await this.query('g');
    if (r === '' || r[0] === 'E') throw new Error(`gdbstub: g answered "${r.slice(0, 40)}"`);
    return r;
  }

  /** Read guest memory (`m addr,len`). */
  async readMemory(addr: bigint, len: number): Promise<Buffer> {
    const r = await this.query(`m${addr.toString(16)},${len.toString(16)}`);
    if (r === '' || r[0] === 'E') throw new Error(`gdbstub: m${addr.toString(16)},${len} answered "${r}"`);
    return Buffer.from(r, 'hex');
  }

  /**
   * Up to `len` bytes from `addr` (e.g. an instruction's worth from rip): all of them, else those up
   * to the end of addr's 4 KiB page (QEMU refuses a whole `m` with E14 when part of it is unmapped, and
   * code near the end of the last mapped page is common), else none. Never throws on a refusal.
   */
  async readMemoryUpTo(addr: bigint, len: number): Promise<Buffer> {
    const toPageEnd = Number(0x1000n - (addr & 0xfffn));
    for (const n of toPageEnd < len ? [len, toPageEnd] : [len]) {
      const r = await this.query(`m${addr.toString(16)},${n.toString(16)}`);
      if (r !== '' && r[0] !== 'E') return Buffer.from(r, 'hex');
    }
    return Buffer.alloc(0);
  }

  /**
   * Insert a breakpoint: hardware (Z1) first, software (Z0) when the stub refuses; returns which one took.
   * `kind` is the breakpoint length (1 on x86).
   */
  async insertBreakpoint(addr: bigint, kind = 1): Promise<'hw' | 'sw'> {
    const hw = await this.request(`Z1,${addr.toString(16)},${kind}`);
    if (hw === 'OK') return 'hw';
    const sw = await this.request(`Z0,${addr.toString(16)},${kind}`);
    if (sw === 'OK') return 'sw';
    throw new Error(`gdbstub: cannot set a breakpoint at ${addr.toString(16)} (Z1: "${hw}", Z0: "${sw}")`);
  }

  async removeBreakpoint(addr: bigint, type: 'hw' | 'sw', kind = 1): Promise<void> {
    const r = await this.request(`z${type === 'hw' ? 1 : 0},${addr.toString(16)},${kind}`);
    if (r !== 'OK') throw new Error(`gdbstub: cannot remove the breakpoint at ${addr.toString(16)}: "${r}"`);
  }

  /** Kill the target (`k`; QEMU exits). Waits at most `timeoutMs` for the connection to close. */
  async kill(timeoutMs = 2000): Promise<void> {
    if (this.closed) return;
    this.send('k');
    await new Promise<void>((resolve) => {
      if (this.closed) return resolve();
      const t = setTimeout(resolve, timeoutMs);
      this.socket.once('close', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Detach (`D`, `D;1` in multiprocess mode): the target runs on without the debugger. Returns the stub's answer. */
  async detach(pid = 1): Promise<string> {
    try {
      return await this.request(this.multiprocess ? `D;${pid.toString(16)}` : 'D', 2000);
    } catch (err) {
      if (err instanceof GdbClosedError) return 'OK'; // some stubs close at once
      throw err;
    }
  }

  close(): void {
    this.socket.destroy();
  }

  get isClosed(): boolean {
    return this.closed !== null;
  }

  private onFrame(f: Frame): void {
    switch (f.type) {
      case 'packet':
        this.packetsReceived++;
        if (this.ackMode) this.owe();
        if (f.data.length > 1 && f.data[0] === 'O' && /^O[0-9a-fA-F]+$/.test(f.data)) return; // console output
        if (this.waiter) {
          const w = this.waiter;
          this.waiter = null;
          if (w.timer) clearTimeout(w.timer);
          w.resolve(f.data);
        } else this.queue.push(f.data);
        return;
      case 'bad':
        this.badPackets++;
        if (this.ackMode) this.socket.write('-');
        return;
      case 'nak':
        if (this.lastSent) this.socket.write(this.lastSent);
        return;
      default:
        return; // acks, notifications
    }
  }

  /**
   * Ack a packet: a request sent in reaction to the reply (the step loop's next `p` or `s`, sent from a
   * microtask) carries the '+'; otherwise it goes out alone on the next macrotask, so a stub that waits
   * for it is not kept waiting. Either way the '+' goes out before any later request, so it never reaches
   * QEMU while the VM runs (QEMU takes any byte that arrives then as a stop request, and drops it).
   */
  private owe(): void {
    if (this.ackOwed) return;
    this.ackOwed = true;
    setImmediate(() => {
      if (!this.ackOwed || this.closed) return;
      this.ackOwed = false;
      this.socket.write(ACK);
    });
  }

  private fail(err: Error): void {
    const w = this.waiter;
    this.waiter = null;
    if (w) {
      if (w.timer) clearTimeout(w.timer);
      w.reject(err);
    }
  }
}

function openSocket(target: GdbTarget, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = 'path' in target ? netConnect(target.path) : netConnect(target.port, target.host);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new GdbTimeoutError('connect timed out'));
    }, Math.max(1, timeoutMs));
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    });
  });
}

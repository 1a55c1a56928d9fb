/**
 * A small fake GDB remote stub on 127.0.0.1 (its framing, escaping and run-length encoding are coded
 * independently of capture/engines/qemu/gdb-remote.ts): it answers what QEMU's gdbstub answers to the
 * packets the client and the QEMU step engine send. Used by test/gdb-remote.test.ts and test/qemu-step-loop.test.ts.
 */
import { createServer, type Server, type Socket } from 'node:net';


export function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** The stub's own encoder: escape, then run-length encode runs of 4+ (avoiding the forbidden counts). */
function stubEncode(data: string, rle: boolean): string {
  let esc = '';
  for (const ch of data) esc += '#$}*'.includes(ch) ? '}' + String.fromCharCode(ch.charCodeAt(0) ^ 0x20) : ch;
  if (!rle) return esc;
  let out = '';
  for (let i = 0; i < esc.length; ) {
    let run = 1;
    while (i + run < esc.length && esc[i + run] === esc[i] && run < 97) run++;
    let extra = run - 1;
    // repeat count char = extra + 29; '#' (35) and '$' (36) are forbidden: use fewer
    if (extra + 29 === 35 || extra + 29 === 36) extra = 5;
    if (extra >= 3 && esc[i] !== '}' && (i === 0 || esc[i - 1] !== '}')) {
      out += esc[i] + '*' + String.fromCharCode(extra + 29);
      i += extra + 1;
    } else {
      out += esc[i];
      i++;
    }
  }
  return out;
}

export function stubPacket(data: string, opts: { rle?: boolean; corrupt?: boolean } = {}): string {
  const body = stubEncode(data, opts.rle ?? true);
  let sum = 0;
  for (let i = 0; i < body.length; i++) sum += body.charCodeAt(i);
  return `$${body}#${hex2((sum + (opts.corrupt ? 1 : 0)) & 0xff)}`;
}

const PART2 = '<feature name="org.gnu.gdb.i386.core"><!-- #$}* --><reg name="rax" bitsize="64"/><reg name="rbx" bitsize="64"/>' +
  '<reg name="rip" bitsize="64" type="code_ptr"/><reg name="eflags" bitsize="32"/><reg name="fs_base" bitsize="64" regnum="40"/></feature>';
const TARGET = '<?xml version="1.0"?><target><architecture>i386:x86-64</architecture><xi:include href="core.xml"/></target>';

export interface Stub {
  server: Server;
  port: number;
  received: string[];
  acksFromClient: number;
  noAck: boolean;
  rip: bigint;
  inlineRip: boolean;
  /** Send the next reply with a bad checksum once. */
  corruptNext: boolean;
  /** NAK the next packet from the client once. */
  nakNext: boolean;
  multiprocess: boolean;
  /** Guest memory for `m`: bytes readable from memoryBase up to memoryBase + memory.length; E14 for a read past it. */
  memoryBase: bigint;
  memory: Buffer;
  /** Answer the next register read with `W00` and close, as QEMU does when the guest resets under -no-reboot. */
  exitOnRead: boolean;
  /** The next this-many steps leave rip where it is (QEMU 7.2's no-progress answers, or a rep instruction). */
  stallSteps: number;
  /** Never answer a step (an instruction that does not complete: HLT with interrupts masked). */
  hangSteps: boolean;
  /** Answer steps with `W00` from this rip on (the guest's power-off). */
  exitAt: bigint | null;
}

export async function startStub(): Promise<Stub> {
  const stub: Stub = { server: createServer(), port: 0, received: [], acksFromClient: 0, noAck: false, rip: 0xffffffff8304ce41n, inlineRip: false, corruptNext: false, nakNext: false, multiprocess: false, memoryBase: 0n, memory: Buffer.alloc(0), exitOnRead: false, stallSteps: 0, hangSteps: false, exitAt: null };
  stub.server.on('connection', (sock: Socket) => {
    let buf = '';
    const reply = (data: string): void => {
      if (stub.corruptNext) {
        stub.corruptNext = false;
        sock.write(stubPacket(data, { corrupt: true }));
        pendingResend = data;
        return;
      }
      sock.write(stubPacket(data));
    };
    let pendingResend: string | null = null;
    sock.on('data', (chunk) => {
      if (sock.writableEnded) return; // after a W: gone, as QEMU is
      buf += chunk.toString('latin1');
      for (;;) {
        if (buf.startsWith('+')) {
          stub.acksFromClient++;
          buf = buf.slice(1);
          continue;
        }
        if (buf.startsWith('-')) {
          buf = buf.slice(1);
          if (pendingResend !== null) sock.write(stubPacket(pendingResend));
          pendingResend = null;
          continue;
        }
        if (buf.startsWith('\x03')) {
          buf = buf.slice(1);
          reply('T02thread:01;');
          continue;
        }
        const m = /^\$([^#]*)#([0-9a-f]{2})/.exec(buf);
        if (!m) {
          if (buf.length > 0 && !buf.startsWith('$')) buf = buf.slice(1);
          break;
        }
        buf = buf.slice(m[0].length);
        let sum = 0;
        for (let i = 0; i < m[1]!.length; i++) sum += m[1]!.charCodeAt(i);
        if ((sum & 0xff) !== parseInt(m[2]!, 16)) throw new Error(`client sent a bad checksum: ${m[0]}`);
        if (stub.nakNext) {
          stub.nakNext = false;
          sock.write('-');
          continue;
        }
        if (!stub.noAck) sock.write('+');
        const data = m[1]!.replace(/\}(.)/g, (_, c: string) => String.fromCharCode(c.charCodeAt(0) ^ 0x20));
        stub.received.push(data);
        handle(data);
      }
    });
    const le = (v: bigint): string => {
      let s = '';
      for (let i = 0; i < 8; i++) s += hex2(Number((v >> BigInt(8 * i)) & 0xffn));
      return s;
    };
    function handle(data: string): void {
      if (data.startsWith('qSupported')) {
        stub.multiprocess = data.includes('multiprocess+');
        return reply(`PacketSize=1000;qXfer:features:read+;vContSupported+;QStartNoAckMode+${stub.multiprocess ? ';multiprocess+' : ''}`);
      }
      if (data === 'QStartNoAckMode') {
        reply('OK');
        stub.noAck = true;
        return;
      }
      const xfer = /^qXfer:features:read:([^:]+):([0-9a-f]+),([0-9a-f]+)$/.exec(data);
      if (xfer) {
        const doc = xfer[1] === 'target.xml' ? TARGET : xfer[1] === 'core.xml' ? PART2 : null;
        if (doc === null) return reply('E00');
        const off = parseInt(xfer[2]!, 16);
        const len = Math.min(parseInt(xfer[3]!, 16), 40); // small chunks: the client must loop
        const part = doc.slice(off, off + len);
        return reply((off + len >= doc.length ? 'l' : 'm') + part);
      }
      if (data === '?') return reply('T05thread:01;');
      if (data === 'vCont?') return reply('vCont;c;C;s;S');
      if ((data === 'p10' || data === 'p2') && stub.exitOnRead) {
        reply('W00');
        sock.end();
        return;
      }
      if (data === 'p10' || data === 'p2') return reply(le(stub.rip)); // rip is register 2 in this stub's description
      if (data === 'g') return reply('0'.repeat(32) + le(stub.rip) + '00000200');
      const mem = /^m([0-9a-f]+),([0-9a-f]+)$/.exec(data);
      if (mem) {
        const off = BigInt(`0x${mem[1]}`) - stub.memoryBase;
        const len = parseInt(mem[2]!, 16);
        // As QEMU: a read that runs into unmapped memory fails as a whole
        if (stub.memory.length === 0) return reply('f4');
        if (off < 0n || off + BigInt(len) > BigInt(stub.memory.length)) return reply('E14');
        return reply(stub.memory.subarray(Number(off), Number(off) + len).toString('hex'));
      }
      if (data === 'vCont;s' || data === 's') {
        if (stub.hangSteps) return;
        if (stub.exitAt !== null && stub.rip >= stub.exitAt) {
          reply('W00');
          sock.end();
          return;
        }
        if (stub.stallSteps > 0) stub.stallSteps--;
        else stub.rip += 3n;
        return reply(stub.inlineRip ? `T05thread:01;2:${le(stub.rip)};` : 'T05thread:01;');
      }
      if (data === 'c') {
        setTimeout(() => reply('T05thread:01;hwbreak:;'), 30);
        return;
      }
      if (data.startsWith('Z1')) return reply(''); // no hardware breakpoints: the client falls back to Z0
      if (data.startsWith('Z0') || data.startsWith('z0')) return reply('OK');
      if (data === 'qSilent') return; // never answered
      if (data === 'D') return reply(stub.multiprocess ? 'E22' : 'OK'); // as QEMU: multiprocess needs the pid
      if (data === 'D;1') return reply('OK');
      if (data === 'k') {
        sock.destroy();
        return;
      }
      reply('');
    }
  });
  await new Promise<void>((r) => stub.server.listen(0, '127.0.0.1', r));
  const addr = stub.server.address();
  stub.port = typeof addr === 'object' && addr ? addr.port : 0;
  return stub;
}


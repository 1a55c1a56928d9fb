import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseElf64 } from '../capture/boot/elf.js';
import { physicalAliasesFromElf, symbolsFromElf } from '../src/symbols/elf-symbols.js';
import { loadSymbolFile } from '../src/symbols/load.js';
import { SymbolTable } from '../src/symbols/symbol-table.js';
import { parseSystemMap } from '../src/symbols/system-map.js';
import { UserError } from '../src/errors.js';
import { buildGuests, nm } from './elf-fixture.js';
import { describeNeeds, onPath } from './preconditions.js';

const SAMPLES = join(import.meta.dirname, '..', 'samples', 'symbols');
const sample = (name: string) => readFileSync(join(SAMPLES, name), 'latin1');

describe('parseSystemMap: System.map', () => {
  const map = parseSystemMap(sample('System.map-6.1-excerpt'), 'System.map');

  it('describes addresses like gdb info symbol, with decimal offsets', () => {
    expect(map.describe(0xffffffff8304ce41n)).toBe('start_kernel in section .init.text');
    expect(map.describe(0xffffffff8304ce49n)).toBe('start_kernel + 8 in section .init.text');
    expect(map.describe(0xffffffff81001080n + 100n)).toBe('vprintk_emit + 100 in section .text');
    expect(map.describe(0xffffffff82000010n)).toBe('linux_banner + 16 in section .rodata');
    expect(map.describe(0xffffffff83601008n)).toBe('empty_zero_page + 8 in section .bss');
    expect(map.lookup(0xffffffff81000713n)).toEqual({ name: 'do_one_initcall', offset: 3, section: '.text' });
  });

  it('picks the most specific alias at one address', () => {
    expect(map.describe(0xffffffff81000000n)).toBe('startup_64 in section .text');
    expect(map.describe(0xffffffff81000010n)).toBe('startup_64 + 16 in section .text');
    expect(map.resolve('_stext')).toBe(0xffffffff81000000n);
    expect(map.resolve('startup_64')).toBe(0xffffffff81000000n);
    expect(map.resolve('no_such_symbol')).toBeUndefined();
  });

  it('leaves unresolved what no symbol covers: bare lowercase hex', () => {
    expect(map.describe(0x100200n)).toBe('100200'); // the bzImage entry, a physical RIP
    expect(map.describe(0x1000000n)).toBe('1000000'); // beyond the per-cpu section, below the kernel
    expect(map.lookup(0x2c100n)).toBeNull();
    expect(map.lookup(0xffffffff80ffffffn)).toBeNull(); // below _stext
    expect(map.lookup(0xffffffff81e02100n)).toBeNull(); // past _etext, before .rodata
    expect(map.lookup(0xffffffff83a40008n)).toBeNull(); // past _end
    expect(map.describe(0xffffffffc0001234n)).toBe('ffffffffc0001234');
    expect(map.lookup(0x1008n)).toEqual({ name: 'cpu_debug_store', offset: 8, section: '.data..percpu' });
  });

  it('drops absolute symbols and counts distinct addresses', () => {
    expect(map.resolve('kexec_control_code_size')).toBeUndefined();
    const lines = sample('System.map-6.1-excerpt').trim().split('\n');
    const addrs = new Set(lines.filter((l) => !/ [Aa] /.test(l)).map((l) => l.split(' ')[0]));
    expect(map.size).toBe(addrs.size);
  });

  it('rejects malformed lines with the line number', () => {
    expect(() => parseSystemMap(sample('System.map-malformed'), 'System.map-malformed')).toThrow(
      /^System\.map-malformed:3: malformed symbol line "ffffffff8100zz00 T not_hex"/,
    );
    expect(() => parseSystemMap('ffffffff81000000 T\n', 'm')).toThrow(/^m:1: .*got 2 fields/);
    expect(() => parseSystemMap('\n\n', 'empty')).toThrow(UserError);
  });

  it('accepts CRLF line ends', () => {
    const crlf = parseSystemMap(sample('System.map-6.1-excerpt').replace(/\n/g, '\r\n'), 'crlf');
    expect(crlf.describe(0xffffffff8304ce42n)).toBe('start_kernel + 1 in section .init.text');
  });
});

describe('parseSystemMap: /proc/kallsyms with modules', () => {
  const ks = parseSystemMap(sample('kallsyms-with-modules.txt'), 'kallsyms');

  it('resolves module symbols and names the module', () => {
    expect(ks.describe(0xffffffffc0a00010n)).toBe('ext4_fill_super + 16 in section .text of ext4');
    expect(ks.lookup(0xffffffffc0200644n)).toEqual({ name: 'virtblk_remove', offset: 4, section: '.text', module: 'virtio_blk' });
    expect(ks.describe(0xffffffffc0203000n)).toBe('virtio_blk in section .data of virtio_blk');
    expect(ks.resolve('ext4_read_inode_bitmap')).toBe(0xffffffffc0a02180n);
  });

  it('the gap between the kernel image and the modules resolves to nothing', () => {
    expect(ks.lookup(0xffffffffa0000000n)).toBeNull();
    expect(ks.describe(0xffffffff8304ce41n)).toBe('start_kernel in section .text'); // no init markers here
  });

  it('an unsized last symbol covers at most a page', () => {
    expect(ks.lookup(0xffffffffc0a40ff0n)?.name).toBe('ext4_filetype_table');
    expect(ks.lookup(0xffffffffc0a41000n)).toBeNull();
  });

  it('rejects a tab followed by something other than [module]', () => {
    expect(() => parseSystemMap('ffffffffc0a00000 t f\text4\n', 'k')).toThrow(/^k:1: .*\[module\] tag/);
  });
});

describe('parseSystemMap: nm output', () => {
  const t = parseSystemMap(sample('nm-sized.txt'), 'nm.txt');
  it('uses sizes, skips undefined and absolute symbols', () => {
    expect(t.describe(0x1030n + 9n)).toBe('helper + 9 in section .text');
    expect(t.lookup(0x103an)).toBeNull(); // helper is 10 bytes; the padding before compute is nobody's
    expect(t.describe(0x1040n)).toBe('compute in section .text');
    expect(t.describe(0x3020n + 511n)).toBe('table + 511 in section .bss');
    expect(t.lookup(0x3220n)).toBeNull();
    expect(t.resolve('__gmon_start__')).toBeUndefined();
    expect(t.size).toBe(5);
  });
});

describe('SymbolTable physical aliases', () => {
  it('vmlinux text at 16 MiB resolves through its link address; nothing else changes', () => {
    const t = parseSystemMap(sample('System.map-6.1-excerpt'), 'System.map');
    t.setPhysicalAliases([{ physStart: 0x1000000n, physEnd: 0x2826634n, virtStart: 0xffffffff81000000n }]);
    expect(t.describe(0x1000000n)).toBe('startup_64 in section .text');
    expect(t.describe(0x1000062n)).toBe('secondary_startup_64 + 2 in section .text');
    expect(t.describe(0x100200n)).toBe('100200');
    expect(t.describe(0x2826634n)).toBe('2826634');
    expect(t.describe(0xffffffff8304ce41n)).toBe('start_kernel in section .init.text');
    expect(t.describe(0x1008n)).toBe('cpu_debug_store + 8 in section .data..percpu');
  });
});

describe('SymbolTable cache', () => {
  it('gives the same answers as a fresh table when jumping between functions', () => {
    const text = sample('System.map-6.1-excerpt');
    const cached = parseSystemMap(text, 'a');
    const addrs: bigint[] = [];
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const base = [0xffffffff81000000n, 0xffffffff81001000n, 0xffffffff8304ce41n, 0x1000n, 0xffffffff83600000n];
    for (let i = 0; i < 500; i++) {
      const b = base[Math.floor(rnd() * base.length)]!;
      addrs.push(b + BigInt(Math.floor(rnd() * 0x3000)) - 0x100n);
      if (rnd() < 0.5) addrs.push(addrs[addrs.length - 1]! + 1n); // same function again: cache hit
    }
    for (const a of addrs) {
      expect(cached.describe(a)).toBe(parseSystemMap(text, 'b').describe(a));
    }
  });

  it('a hit in a sized symbol does not leak into the gap after it', () => {
    const t = new SymbolTable([
      { addr: 0x1000n, name: 'f', type: 'T', size: 0x10 },
      { addr: 0x1100n, name: 'g', type: 'T', size: 0x10 },
    ]);
    expect(t.describe(0x1008n)).toBe('f + 8 in section .text');
    expect(t.describe(0x1010n)).toBe('1010');
    expect(t.describe(0x1004n)).toBe('f + 4 in section .text');
    expect(t.describe(0x1104n)).toBe('g + 4 in section .text');
    expect(t.describe(0x1000n)).toBe('f in section .text');
    expect(t.describe(0xfffn)).toBe('fff');
  });
});

const noCc = onPath('cc') ? null : 'no C compiler `cc` (apt-get install build-essential)';
const guests = noCc ? null : buildGuests();

describeNeeds(noCc, 'symbolsFromElf (guest built with cc)', () => {
  it('reads functions and objects with sizes and section names, matching nm', () => {
    const elf = parseElf64(guests!.high, 'high.elf');
    const t = symbolsFromElf(elf)!;
    expect(t).not.toBeNull();
    const nmOut = nm(join(guests!.dir, 'high.elf'));
    const compute = t.resolve('compute')!;
    if (nmOut) {
      const line = nmOut.split('\n').find((l) => l.endsWith(' compute'))!;
      expect(compute).toBe(BigInt('0x' + line.split(' ')[0]));
    }
    expect(t.describe(compute)).toBe('compute in section .text');
    expect(t.describe(compute + 5n)).toBe('compute + 5 in section .text');
    expect(t.describe(t.resolve('helper')!)).toBe('helper in section .text');
    expect(t.describe(t.resolve('counter')! + 2n)).toBe('counter + 2 in section .data');
    expect(t.describe(t.resolve('table')! + 8n)).toBe('table + 8 in section .bss');
    expect(t.lookup(0x1000000n)).toBeNull(); // physical address: not a symbol address
  });

  it('loadSymbolFile tells ELF from text by content', () => {
    const fromElf = loadSymbolFile(join(guests!.dir, 'low.elf'));
    expect(fromElf.describe(fromElf.resolve('_start')!)).toBe('_start in section .text');
    const fromMap = loadSymbolFile(join(SAMPLES, 'System.map-6.1-excerpt'));
    expect(fromMap.resolve('start_kernel')).toBe(0xffffffff8304ce41n);
    expect(() => loadSymbolFile(join(SAMPLES, 'missing'))).toThrow(/cannot read symbol file/);
  });

  it('physical aliases from the executable segment symbolise code running at its load address', () => {
    const elf = parseElf64(guests!.high, 'high.elf');
    const t = symbolsFromElf(elf)!;
    const aliases = physicalAliasesFromElf(elf);
    expect(aliases).toEqual([{ physStart: 0x1000000n, physEnd: expect.any(BigInt), virtStart: 0xffffffff81000000n }]);
    const phys = 0x1000000n + (t.resolve('compute')! - 0xffffffff81000000n) + 3n;
    expect(t.describe(phys)).toBe(phys.toString(16));
    t.setPhysicalAliases(aliases);
    expect(t.describe(phys)).toBe('compute + 3 in section .text');
    expect(t.lookup(phys)?.offset).toBe(3);
    expect(t.describe(t.resolve('compute')! + 3n)).toBe('compute + 3 in section .text');
    // The data segment is not executable: its physical addresses stay unresolved.
    expect(t.describe(0x1001000n)).toBe('1001000');
    expect(physicalAliasesFromElf(parseElf64(guests!.low, 'low.elf'))).toEqual([]);
  });

  it('a stripped ELF has no table', () => {
    const elf = parseElf64(guests!.low, 'low.elf');
    elf.sectionHeaders = elf.sectionHeaders.filter((s) => s.name !== '.symtab');
    expect(symbolsFromElf(elf)).toBeNull();
  });
});

describe('parseSystemMap: real kallsyms excerpt (Debian 6.1.0-56-cloud-amd64, decoded from the bzImage)', () => {
  const t = parseSystemMap(sample('kallsyms-6.1.0-56-cloud-amd64-excerpt.map'), 'excerpt');

  it('names the functions where this machine\'s boots stop', () => {
    expect(t.describe(0xffffffff8304ee41n)).toBe('start_kernel in section .init.text');
    expect(t.describe(0xffffffff8305e26cn)).toBe('int3_selftest_ip in section .init.text');
    expect(t.describe(0xffffffff8305e26dn)).toBe('int3_selftest_ip + 1 in section .init.text');
    expect(t.describe(0xffffffff81000000n)).toBe('startup_64 in section .text');
    expect(t.describe(0xffffffff8304ee0fn)).toBe('arch_call_rest_init in section .init.text'); // weak (W) symbol
    expect(t.describe(0xffffffff832b1000n)).toBe('empty_zero_page in section .bss');
  });

  it('end markers name only their own address', () => {
    expect(t.describe(0xffffffff81e01ef1n)).toBe('__x86_return_thunk + 1 in section .text');
    expect(t.lookup(0xffffffff81e01ef3n)).toBeNull(); // between _etext and .rodata
    expect(t.lookup(0xffffffff83830010n)).toBeNull(); // past _end / __brk_limit
    expect(t.describe(0xffffffff83800000n)).toBe('__bss_stop in section .bss');
    expect(t.describe(0xffffffff83a00008n)).toBe('sme_workarea + 8 in section .data');
  });

  it('absolute per-cpu symbols are dropped', () => {
    expect(t.resolve('fixed_percpu_data')).toBeUndefined();
    expect(t.lookup(0x1000n)).toBeNull();
  });
});

describe('end markers', () => {
  it('real functions and objects whose names end in _end still cover their bodies', () => {
    const t = parseSystemMap(
      [
        'ffffffff81100000 T __delayacct_blkio_end',
        'ffffffff81100080 T __irqentry_text_end',
        'ffffffff81100080 T asm_exc_divide_error',
        'ffffffff811000a0 T __entry_text_end',
        'ffffffff82c00000 D __tracepoint_ext4_write_end',
        'ffffffff82c00040 D __end_once',
      ].join('\n'),
      'm',
    );
    expect(t.describe(0xffffffff81100010n)).toBe('__delayacct_blkio_end + 16 in section .text');
    expect(t.describe(0xffffffff81100084n)).toBe('asm_exc_divide_error + 4 in section .text');
    expect(t.lookup(0xffffffff811000a4n)).toBeNull();
    expect(t.describe(0xffffffff82c00008n)).toBe('__tracepoint_ext4_write_end + 8 in section .data');
    expect(t.lookup(0xffffffff82c00048n)).toBeNull();
  });
});

/**
 * The schema of profile.json (version 2), kept next to its types (profile.ts) and documented field by field
 * in docs/capture-format.md (a test checks that every field here is listed there). A small declarative
 * form instead of JSON Schema: the checks it needs are types, nullability, value sets and string maps,
 * and the same table drives the tolerant reader (strict = false: value sets not enforced) and the strict
 * validator the tests run on every engine's output.
 */

export type FieldType = 'string' | 'number' | 'integer' | 'boolean' | 'object' | 'string[]' | 'map<number>';

export interface Field {
  type: FieldType;
  /** null is allowed. */
  nullable?: boolean;
  /** May be absent (engine and mode parts). */
  optional?: boolean;
  /** Values allowed (checked in strict mode only: a reader shows an unknown value as it is). */
  values?: readonly (string | number)[];
  /** For 'object'. */
  fields?: Readonly<Record<string, Field>>;
}

export interface Problem {
  path: string;
  message: string;
}

const str: Field = { type: 'string' };
const strOrNull: Field = { type: 'string', nullable: true };
const num: Field = { type: 'number' };
const numOrNull: Field = { type: 'number', nullable: true };
const int: Field = { type: 'integer' };

export const PROFILE_SCHEMA: Field = {
  type: 'object',
  fields: {
    format: { type: 'string', values: ['boot-trace-profile'] },
    version: { type: 'integer', values: [1, 2] },
    engine: { type: 'string', values: ['kvm', 'qemu'] },
    mode: { type: 'string', values: ['run', 'step', 'trace'] },
    clock: { type: 'string', values: ['host', 'steps'] },
    kernel: str,
    initrd: strOrNull,
    cmdline: str,
    memory_mib: num,
    timeout_us: numOrNull,
    phases_us: { type: 'map<number>' },
    guest_markers_us: { type: 'map<number>' },
    exit: {
      type: 'object',
      fields: {
        reason: {
          type: 'string',
          values: ['shutdown', 'reset', 'panic', 'halt', 'timeout', 'max-steps', 'trace-until', 'interrupted', 'internal-error', 'fail-entry', 'system-event', 'unhandled-exit'],
        },
        detail: str,
        rip: strOrNull,
        symbol: strOrNull,
        signal: { type: 'string', nullable: true, values: ['SIGINT', 'SIGTERM', 'SIGHUP'] },
      },
    },
    console_lines: int,
    peak_rss_mib: numOrNull,
    peak_rss_source: { type: 'string', nullable: true, values: ['self', 'rusage', 'vmhwm'] },
    guest_memory: {
      type: 'object',
      nullable: true,
      fields: { total_mib: num, used_mib: num, free_mib: num, available_mib: numOrNull },
    },
    step: {
      type: 'object',
      nullable: true,
      fields: {
        steps: int,
        steps_per_second: num,
        trace_lines: int,
        symbols_us: num,
        trace_from: {
          type: 'object',
          nullable: true,
          fields: {
            spec: str,
            address: str,
            reached_us: numOrNull,
            by: { type: 'string', nullable: true, optional: true, values: ['hw', 'sw'] },
            trap: { type: 'string', optional: true, values: ['auto', 'hw', 'sw'] },
            note: { type: 'string', nullable: true, optional: true },
          },
        },
        trace_until: strOrNull,
      },
    },
    setup: {
      type: 'object',
      nullable: true,
      fields: {
        engine: { type: 'object', fields: { asked: str, chosen: str, reason: str, probe_us: numOrNull, probe_cached: { type: 'boolean', nullable: true } } },
        kernel: { type: 'object', fields: { path: str, source: str } },
        decompress: {
          type: 'object',
          fields: { mode: { type: 'string', values: ['host', 'guest', 'none'] }, format: strOrNull, duration_us: num, cached: { type: 'boolean' }, booted: str },
        },
        initrd: { type: 'object', fields: { path: strOrNull, source: { type: 'string', values: ['argument', 'appliance', 'none'] }, workload: strOrNull } },
        symbols: {
          type: 'object',
          fields: { source: { type: 'string', values: ['system-map', 'kallsyms', 'elf-symtab', 'none'] }, file: strOrNull, count: { type: 'integer', nullable: true }, duration_us: num },
        },
        cmdline_source: { type: 'string', values: ['argument', 'default', 'default+append'] },
        steps_us: { type: 'map<number>' },
      },
    },
    kvm: {
      type: 'object',
      optional: true,
      fields: {
        exits: int,
        block_irq: { type: 'boolean' },
        stop_us: { type: 'number', optional: true },
        step_watchdog: {
          type: 'object',
          nullable: true,
          optional: true,
          fields: {
            mode: { type: 'string', values: ['auto', 'always'] },
            rearm_emulated: int, rearm_tf_clear: int, lost: int, late: int, rearm_always: int,
            gaps: { type: 'string[]' },
          },
        },
      },
    },
    trace: {
      type: 'object',
      optional: true,
      fields: {
        granularity: { type: 'string', values: ['function', 'block', 'instruction'] },
        file: str, recording_mib: num, records: int, instructions: int, compression: strOrNull, excluded_us: numOrNull,
        start: str, until: strOrNull, max_steps: { type: 'integer', nullable: true }, plugin_end: strOrNull, cut: strOrNull,
        plugin_api: int, syscall_entries: { type: 'integer', nullable: true },
      },
    },
    qemu: {
      type: 'object',
      optional: true,
      fields: {
        accel: { type: 'string', values: ['kvm', 'tcg'] },
        version: str,
        args: { type: 'string[]' },
        status: { type: 'integer', nullable: true },
        signal: strOrNull,
        gdbstub: {
          type: 'object',
          nullable: true,
          fields: {
            sstep_flags: int, step_packet: str, packets_sent: int, bad_packets: int, stop_replies_with_rip: int, no_progress_steps: int,
            breakpoint: { type: 'string', nullable: true, values: ['hw', 'sw'] },
          },
        },
      },
    },
  },
};

/** Problems of `value` against `field`, with dotted paths (`exit.reason`). Extra object keys are not problems. */
export function checkValue(value: unknown, field: Field, path: string, strict: boolean): Problem[] {
  const out: Problem[] = [];
  const at = (msg: string): void => void out.push({ path, message: msg });
  if (value === undefined) {
    if (!field.optional) at('missing');
    return out;
  }
  if (value === null) {
    if (!field.nullable) at(`expected ${field.type}, found null`);
    return out;
  }
  const found = Array.isArray(value) ? 'array' : typeof value;
  switch (field.type) {
    case 'string':
      if (typeof value !== 'string') at(`expected a string, found ${found}`);
      break;
    case 'number':
    case 'integer':
      if (typeof value !== 'number' || !Number.isFinite(value)) at(`expected a finite number, found ${JSON.stringify(value)}`);
      else if (field.type === 'integer' && !Number.isInteger(value)) at(`expected a whole number, found ${value}`);
      break;
    case 'boolean':
      if (typeof value !== 'boolean') at(`expected true or false, found ${found}`);
      break;
    case 'string[]':
      if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) at('expected an array of strings');
      break;
    case 'map<number>':
      if (found !== 'object') at(`expected an object of numbers, found ${found}`);
      else {
        for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
          if (typeof v !== 'number' || !Number.isFinite(v)) out.push({ path: `${path}.${k}`, message: `expected a finite number, found ${JSON.stringify(v)}` });
        }
      }
      break;
    case 'object':
      if (found !== 'object') at(`expected an object, found ${found}`);
      else {
        for (const [k, f] of Object.entries(field.fields ?? {})) {
          out.push(...checkValue((value as Record<string, unknown>)[k], f, path ? `${path}.${k}` : k, strict));
        }
      }
      break;
  }
  if (strict && out.length === 0 && field.values && !field.values.includes(value as string | number)) {
    at(`${JSON.stringify(value)} is not one of ${field.values.map((v) => JSON.stringify(v)).join(', ')}`);
  }
  return out;
}

/** Every field path of the schema (`exit.reason`, `qemu.gdbstub.sstep_flags`...), for the documentation check. */
export function schemaPaths(field: Field = PROFILE_SCHEMA, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, f] of Object.entries(field.fields ?? {})) {
    const p = prefix ? `${prefix}.${k}` : k;
    out.push(p);
    if (f.type === 'object') out.push(...schemaPaths(f, p));
  }
  return out;
}

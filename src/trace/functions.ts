/**
 * Interning of function names straight from the bytes of a trace line.
 *
 * A 10-million-line trace names only a few thousand distinct functions, so the reader never builds a
 * string per line: it hashes the name's bytes, finds the id in an open-addressing table, and compares
 * bytes against an arena. A JS string is made once per distinct name. This is what keeps the reader
 * several times faster than awk (see docs/performance.md).
 */

/** Id of bare addresses below the user/kernel split (0x800000000000): user space. */
export const USER = 0;
/** Id of bare kernel-half addresses that no symbol covers. */
export const UNRESOLVED = 1;

export class FunctionTable {
  /** names[id]: the function name; ids 0 and 1 are the buckets for bare addresses. */
  readonly names: string[] = ['[user]', '[unresolved]'];
  private slots = new Int32Array(4096).fill(-1);
  // Per id, in typed arrays (not JS arrays): the lookup on every line reads them, and int32 hashes past
  // 2^30 would make a JS array hold boxed doubles.
  private hashes = new Int32Array(1024);
  private starts = new Int32Array(1024);
  private lengths = new Int32Array(1024);
  private arena = new Uint8Array(1 << 16);
  private arenaView = new DataView(this.arena.buffer);
  private arenaUsed = 0;

  get size(): number {
    return this.names.length;
  }

  /** The id of the name in buf[start, end), interning it on first sight. */
  intern(buf: Uint8Array, start: number, end: number): number {
    let h = 0x811c9dc5;
    for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
    return this.internHashed(buf, start, end, h);
  }

  /**
   * intern() for a caller that already computed the FNV-1a hash of the bytes while scanning them. The
   * hash only finds the candidate: its bytes are compared with the name's, so two names whose hashes
   * collide (which a hostile trace can arrange) stay two functions. `view`: a DataView over exactly buf's
   * bytes (same offset and length), which makes the comparison four bytes at a time.
   */
  internHashed(buf: Uint8Array, start: number, end: number, h: number, view?: DataView): number {
    const len = end - start;
    const slots = this.slots;
    const mask = slots.length - 1;
    let slot = h & mask;
    for (;;) {
      const id = slots[slot]!;
      if (id < 0) break;
      if (this.hashes[id] === h && this.lengths[id] === len && this.same(id, buf, start, len, view)) return id;
      slot = (slot + 1) & mask;
    }
    return this.insert(slot, h, buf, start, end);
  }

  /**
   * Whether name `id` is buf[start, start + len). Four bytes at a time through DataViews (unaligned reads,
   * which V8 compiles to plain loads): the names are ~20 bytes and this runs on every line.
   * `view` is a DataView over exactly `buf`'s bytes; without it the bytes are compared one by one.
   */
  private same(id: number, buf: Uint8Array, start: number, len: number, view: DataView | undefined): boolean {
    const a = this.starts[id]!;
    let k = 0;
    if (view !== undefined) {
      const arena = this.arenaView;
      for (; k + 4 <= len; k += 4) if (arena.getInt32(a + k, true) !== view.getInt32(start + k, true)) return false;
    }
    const bytes = this.arena;
    for (; k < len; k++) if (bytes[a + k] !== buf[start + k]) return false;
    return true;
  }

  /** The id of a name given as a string (for tests and callers outside the reader). */
  idOf(name: string): number {
    const bytes = Buffer.from(name, 'latin1');
    return this.intern(bytes, 0, bytes.length);
  }

  private insert(slot: number, h: number, buf: Uint8Array, start: number, end: number): number {
    const len = end - start;
    if (this.arenaUsed + len > this.arena.length) {
      const bigger = new Uint8Array(Math.max(this.arena.length * 2, this.arenaUsed + len));
      bigger.set(this.arena.subarray(0, this.arenaUsed));
      this.arena = bigger;
      this.arenaView = new DataView(bigger.buffer);
    }
    this.arena.set(buf.subarray(start, end), this.arenaUsed);
    const id = this.names.length;
    if (id === this.hashes.length) {
      this.hashes = grown(this.hashes);
      this.starts = grown(this.starts);
      this.lengths = grown(this.lengths);
    }
    this.names.push(Buffer.from(buf.buffer, buf.byteOffset + start, len).toString('latin1'));
    this.hashes[id] = h;
    this.starts[id] = this.arenaUsed;
    this.lengths[id] = len;
    this.arenaUsed += len;
    this.slots[slot] = id;
    // Keep the table at most half full so probe chains stay short.
    if (this.names.length * 2 > this.slots.length) this.rehash();
    return id;
  }

  private rehash(): void {
    const slots = new Int32Array(this.slots.length * 2).fill(-1);
    const mask = slots.length - 1;
    for (let id = 2; id < this.names.length; id++) {
      let slot = this.hashes[id]! & mask;
      while (slots[slot]! >= 0) slot = (slot + 1) & mask;
      slots[slot] = id;
    }
    this.slots = slots;
  }
}

function grown(a: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> {
  const b = new Int32Array(a.length * 2);
  b.set(a);
  return b;
}

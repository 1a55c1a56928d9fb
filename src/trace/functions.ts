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
  private hashes: number[] = [0, 0];
  private starts: number[] = [0, 0];
  private lengths: number[] = [0, 0];
  private arena = new Uint8Array(1 << 16);
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

  /** intern() for a caller that already computed the FNV-1a hash of the bytes while scanning them. */
  internHashed(buf: Uint8Array, start: number, end: number, h: number): number {
    const len = end - start;
    const mask = this.slots.length - 1;
    let slot = h & mask;
    for (;;) {
      const id = this.slots[slot]!;
      if (id < 0) break;
      if (this.hashes[id] === h && this.lengths[id] === len && this.sameBytes(id, buf, start, len)) return id;
      slot = (slot + 1) & mask;
    }
    return this.insert(slot, h, buf, start, end);
  }

  /** The id of a name given as a string (for tests and callers outside the reader). */
  idOf(name: string): number {
    const bytes = Buffer.from(name, 'latin1');
    return this.intern(bytes, 0, bytes.length);
  }

  private sameBytes(id: number, buf: Uint8Array, start: number, len: number): boolean {
    const arena = this.arena;
    const s = this.starts[id]!;
    for (let i = 0; i < len; i++) if (arena[s + i] !== buf[start + i]) return false;
    return true;
  }

  private insert(slot: number, h: number, buf: Uint8Array, start: number, end: number): number {
    const len = end - start;
    if (this.arenaUsed + len > this.arena.length) {
      const bigger = new Uint8Array(Math.max(this.arena.length * 2, this.arenaUsed + len));
      bigger.set(this.arena.subarray(0, this.arenaUsed));
      this.arena = bigger;
    }
    this.arena.set(buf.subarray(start, end), this.arenaUsed);
    const id = this.names.length;
    this.names.push(Buffer.from(buf.buffer, buf.byteOffset + start, len).toString('latin1'));
    this.hashes.push(h);
    this.starts.push(this.arenaUsed);
    this.lengths.push(len);
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

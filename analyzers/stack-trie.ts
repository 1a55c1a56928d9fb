/**
 * Every distinct call stack of a trace, as a trie: node = (parent node, function id). Holds per node the
 * self time (time the stack was exactly this) and the number of times it was entered. Collapsed stacks,
 * flame graphs and callers/callees are all views of this trie, whose size is the number of distinct
 * stacks, not the number of lines.
 *
 * Typed arrays and an open-addressing table instead of nested Maps: a node costs ~30 bytes, and the
 * lookup on each call is a multiply, a mask and an array read.
 */

/** The root: a virtual node above every stack's outermost frame. */
export const ROOT = 0;

export class StackTrie {
  /** parent[node] (-1 for the root). */
  parent = new Int32Array(1024).fill(-1);
  /** fn[node]: function id (-1 for the root). */
  fn = new Int32Array(1024).fill(-1);
  /** Microseconds during which this exact stack was current. */
  self = new Float64Array(1024);
  /** How many times the stack's top frame was entered. */
  calls = new Float64Array(1024);
  size = 1;
  private slots = new Int32Array(2048).fill(-1);

  /** The child of `parent` for function `fn`, created on first sight. */
  child(parent: number, fn: number): number {
    const mask = this.slots.length - 1;
    let slot = hash(parent, fn) & mask;
    for (;;) {
      const node = this.slots[slot]!;
      if (node < 0) break;
      if (this.parent[node] === parent && this.fn[node] === fn) return node;
      slot = (slot + 1) & mask;
    }
    const node = this.size++;
    if (node === this.parent.length) this.grow();
    this.parent[node] = parent;
    this.fn[node] = fn;
    this.slots[slot] = node;
    // At most half full, so probe chains stay short.
    if (this.size * 2 > this.slots.length) this.rehash();
    return node;
  }

  /** The function ids from the outermost frame down to `node`. */
  path(node: number): number[] {
    const out: number[] = [];
    for (let n = node; n > ROOT; n = this.parent[n]!) out.push(this.fn[n]!);
    return out.reverse();
  }

  /** Inclusive time per node: its self time plus its descendants' (children always have higher ids). */
  inclusive(): Float64Array {
    const total = this.self.slice(0, this.size);
    for (let n = this.size - 1; n > ROOT; n--) total[this.parent[n]!]! += total[n]!;
    return total;
  }

  /** Children lists, by node (built on demand for the views that walk the tree top-down). */
  children(): number[][] {
    const out: number[][] = Array.from({ length: this.size }, () => []);
    for (let n = 1; n < this.size; n++) out[this.parent[n]!]!.push(n);
    return out;
  }

  private grow(): void {
    const size = this.parent.length * 2;
    const parent = new Int32Array(size).fill(-1); parent.set(this.parent); this.parent = parent;
    const fn = new Int32Array(size).fill(-1); fn.set(this.fn); this.fn = fn;
    const self = new Float64Array(size); self.set(this.self); this.self = self;
    const calls = new Float64Array(size); calls.set(this.calls); this.calls = calls;
  }

  private rehash(): void {
    const slots = new Int32Array(this.slots.length * 2).fill(-1);
    const mask = slots.length - 1;
    for (let node = 1; node < this.size; node++) {
      let slot = hash(this.parent[node]!, this.fn[node]!) & mask;
      while (slots[slot]! >= 0) slot = (slot + 1) & mask;
      slots[slot] = node;
    }
    this.slots = slots;
  }
}

const hash = (parent: number, fn: number): number => {
  const h = Math.imul(parent, 0x9e3779b1) ^ Math.imul(fn + 0x7f4a7c15, 0x85ebca6b);
  return (h ^ (h >>> 15)) >>> 0;
};

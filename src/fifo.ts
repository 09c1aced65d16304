/**
 * A first-in first-out queue that takes from its head in constant time. `Array.prototype.shift`
 * moves every item behind the head, and slicing the taken part away after each batch copies
 * what remains: under a long backlog (an audit outage, a client pipelining thousands of
 * messages) either makes the queue's cost grow with its length squared.
 */
export class Fifo<T> {
  private items: T[] = []
  private head = 0

  get length (): number { return this.items.length - this.head }
  push (v: T): void { this.items.push(v) }
  peek (): T | undefined { return this.items[this.head] }
  /** The item `i` places behind the head. */
  at (i: number): T | undefined { return this.items[this.head + i] }
  /** The first `n` items (or fewer), left in place. */
  first (n: number): T[] { return this.items.slice(this.head, this.head + n) }

  shift (): T | undefined {
    if (this.head >= this.items.length) return undefined
    const v = this.items[this.head]
    this.items[this.head++] = undefined as T
    this.compact()
    return v
  }

  /** Forgets the first `n` items. */
  drop (n: number): void {
    const end = Math.min(this.head + n, this.items.length)
    this.items.fill(undefined as T, this.head, end)
    this.head = end
    this.compact()
  }

  /** Whether `v` is in the queue (a rare path: it looks at every item). */
  includes (v: T): boolean { return this.items.indexOf(v, this.head) >= 0 }

  /** Removes the item `i` places behind the head (a rare path: it moves those behind it). */
  removeAt (i: number): void { this.items.splice(this.head + i, 1) }

  /** Empties the queue; returns what it held, head first. */
  clear (): T[] {
    const all = this.items.slice(this.head)
    this.items = []
    this.head = 0
    return all
  }

  // The taken part is let go once empty, or once it is at least half the array.
  private compact (): void {
    if (this.head >= this.items.length) {
      this.items = []
      this.head = 0
    } else if (this.head >= 1024 && 2 * this.head >= this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
  }
}

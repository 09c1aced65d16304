import type { Clock } from '../../src/clock.js'

/** A clock tests move by hand. Starts at the real time so tokens look ordinary. */
export class TestClock implements Clock {
  private t: number
  constructor (start = Date.now()) { this.t = start }
  now = (): number => this.t
  advance (ms: number): void { this.t += ms }
}

import { encodeFrame, type Frame } from './framer.js'

/**
 * What to send on, built from the frames a chunk completed and what became of each: a run of
 * frames passed unchanged goes on as one slice of the chunk it arrived in (no copy, no
 * re-encoding), a replaced frame as its replacement. Only a frame begun in an earlier chunk
 * (`held` bytes of it were buffered before `chunk` arrived) is encoded again, since its start
 * is no longer in one piece. Without a chunk (frames drained later from the framer's buffer)
 * every frame is encoded.
 *
 * Call `keep` or `replace` for each frame, in the order the framer returned them, then `take`.
 * Frames must be tagged (Byte1 tag, Int32 length).
 */
export class Passthrough {
  private pieces: Buffer[] = []
  // Bytes of `chunk` accounted for so far, and where the current unchanged run began.
  private pos = 0
  private runStart = 0
  private straddling: boolean

  constructor (private readonly chunk: Buffer | undefined, private readonly held = 0) {
    this.straddling = chunk !== undefined && held > 0
  }

  /** `f` goes on as it arrived. */
  keep (f: Frame): void {
    if (this.chunk === undefined) {
      this.pieces.push(...encodeFrame(f))
    } else if (this.straddling) {
      this.endStraddle(f)
      this.pieces.push(...encodeFrame(f))
    } else {
      this.pos += 5 + f.body.length
    }
  }

  /** `f` is replaced by `by` (empty to drop it). */
  replace (f: Frame, by: Buffer[]): void {
    if (this.chunk === undefined) {
      this.pieces.push(...by)
      return
    }
    if (this.straddling) {
      this.endStraddle(f)
    } else {
      this.endRun()
      this.pos += 5 + f.body.length
      this.runStart = this.pos
    }
    this.pieces.push(...by)
  }

  /** What to send for the frames so far, in order; starts over from the next frame. */
  take (): Buffer[] {
    this.endRun()
    const out = this.pieces
    this.pieces = []
    return out
  }

  private endStraddle (f: Frame): void {
    this.straddling = false
    this.pos = this.runStart = 5 + f.body.length - this.held
  }

  private endRun (): void {
    const c = this.chunk
    if (c !== undefined && this.pos > this.runStart) this.pieces.push(this.runStart === 0 && this.pos === c.length ? c : c.subarray(this.runStart, this.pos))
    this.runStart = this.pos
  }
}

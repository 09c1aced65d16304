/** The session can no longer tell which statement an upstream message answers: it must end. */
export class OutOfStep extends Error {
  override name = 'OutOfStep'
}

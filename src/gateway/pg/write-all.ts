import type { Socket } from 'node:net'

/** Writes `out` to `socket` (vectored when it is several pieces); true when the socket wants the other side paused. */
export function writeAll (socket: Socket, out: Buffer[]): boolean {
  if (out.length === 0) return false
  if (out.length === 1) return !socket.write(out[0])
  socket.cork()
  for (const b of out) socket.write(b)
  socket.uncork()
  return socket.writableNeedDrain
}

/**
 * `p`, or a rejection once `deadline` (a `performance.now()` time) has passed without it
 * settling: for a stop that must end though the database or network it waits on hangs.
 */
export async function before<T> (p: Promise<T>, deadline: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new Error('did not finish in time')) }, Math.max(0, deadline - performance.now()))
  })
  try {
    return await Promise.race([p, late])
  } finally {
    clearTimeout(timer)
  }
}

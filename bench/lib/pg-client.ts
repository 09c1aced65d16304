import pg from 'pg'

/** A connected `pg.Client` on `url`; the caller ends it. */
export async function connectTo (url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  return c
}

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { openDb } from '../../src/storage/open.js'

const dir = await mkdtemp(join(tmpdir(), 'lineage-open-'))
t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })

t.test('a data directory that is a file is refused with one line naming LINEAGE_DATA_DIR and the path', async (t) => {
  const file = join(dir, 'a-file')
  await writeFile(file, 'not a directory')
  await t.rejects(openDb({ dataDir: file }), { name: 'ConfigError', message: `LINEAGE_DATA_DIR: cannot open the embedded database in ${file} (` })
})

t.test('a damaged embedded database is refused naming LINEAGE_DATA_DIR and the path, and the directory is left unlocked', async (t) => {
  const data = join(dir, 'damaged')
  const db = await openDb({ dataDir: data })
  await db.close()
  await writeFile(join(data, 'pgdata', 'global', 'pg_control'), randomBytes(8192))
  await t.rejects(openDb({ dataDir: data }), { name: 'ConfigError', message: `LINEAGE_DATA_DIR: cannot open the embedded database in ${data} (` })
  await t.rejects(openDb({ dataDir: data }), { message: `LINEAGE_DATA_DIR: cannot open the embedded database in ${data} (` }, 'again: no lock is left behind')
})

import { existsSync } from 'node:fs'
import { chmod, chown, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer, type AddressInfo } from 'node:net'
import t from 'tap'
import { freePort } from '../../helpers/redis.js'
import { run } from '../../helpers/process.js'
import { connectUpstream, UpstreamError } from '../../../src/gateway/pg/upstream.js'
import { query, terminate } from '../../../src/gateway/pg/protocol/frontend.js'
import { Catalog } from '../../../src/gateway/pg/catalog.js'
import { BackendCode } from '../../../src/gateway/pg/protocol/codes.js'
import { Writer } from '../../../src/gateway/pg/protocol/writer.js'
import { loadTlsContext } from '../../../src/gateway/pg/tls.js'

// A private PostgreSQL cluster whose pg_hba.conf asks for SCRAM, md5 and cleartext passwords.
const versions = existsSync('/usr/lib/postgresql') ? (await readdir('/usr/lib/postgresql')).sort() : []
const bin = versions.length === 0 ? undefined : `/usr/lib/postgresql/${versions[versions.length - 1]}/bin`

if (bin === undefined) {
  t.comment('no PostgreSQL server binaries under /usr/lib/postgresql: the upstream login test is skipped')
} else {
  t.test('the gateway logs in to upstreams that ask for SCRAM-SHA-256, md5 or a cleartext password, and never shows the password', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'lineage-upauth-'))
    const data = join(dir, 'data')
    const port = await freePort()
    // initdb refuses to run as root; run the cluster as the postgres user then.
    const asRoot = process.getuid?.() === 0
    const as = async (cmd: string, args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> =>
      asRoot ? await run('runuser', ['-u', 'postgres', '--', cmd, ...args], {}) : await run(cmd, args, {})
    if (asRoot) { await chown(dir, 101, 104).catch(() => {}); await chmod(dir, 0o777) }
    t.teardown(async () => {
      await as(`${bin}/pg_ctl`, ['-D', data, '-m', 'immediate', 'stop'])
      await rm(dir, { recursive: true, force: true })
    })
    const init = await as(`${bin}/initdb`, ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'])
    t.equal(init.code, 0, init.stderr)
    await writeFile(join(data, 'pg_hba.conf'), [
      'local all all trust',
      'host all scram_user 127.0.0.1/32 scram-sha-256',
      'host all md5_user 127.0.0.1/32 md5',
      'host all clear_user 127.0.0.1/32 password',
      ''
    ].join('\n'))
    // TLS with a self-signed certificate, as the gateway makes its own: `sslmode` is what decides its use.
    const certs = join(dir, 'tls')
    await loadTlsContext({ dataDir: certs })
    if (asRoot) { await chown(certs, 101, 104).catch(() => {}); for (const f of await readdir(certs)) await chown(join(certs, f), 101, 104).catch(() => {}) }
    const tlsOptions = `-c ssl=on -c ssl_cert_file=${join(certs, 'gateway-tls-cert.pem')} -c ssl_key_file=${join(certs, 'gateway-tls-key.pem')}`
    const started = await as(`${bin}/pg_ctl`, ['-D', data, '-w', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off ${tlsOptions}`, '-l', join(dir, 'log'), 'start'])
    t.equal(started.code, 0, started.stderr)
    const setup = await as(`${bin}/psql`, ['-h', dir, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-c',
      "SET password_encryption = 'md5'; CREATE ROLE md5_user LOGIN PASSWORD 'md5-pass'; SET password_encryption = 'scram-sha-256'; CREATE ROLE scram_user LOGIN PASSWORD 'scram-pass'; CREATE ROLE clear_user LOGIN PASSWORD 'clear-pass'"])
    t.equal(setup.code, 0, setup.stderr)

    for (const [user, password] of [['scram_user', 'scram-pass'], ['md5_user', 'md5-pass'], ['clear_user', 'clear-pass']]) {
      const up = await connectUpstream(new URL(`postgres://${user}:${password}@127.0.0.1:${port}/postgres`), { timeoutMs: 5000, applicationName: 'lineage:test' })
      t.ok(up.key.pid > 0, `${user}: logged in`)
      t.ok(up.parameters.length > 0, `${user}: the server's parameters are kept for the client`)
      const got: Buffer[] = []
      up.socket.on('data', (d: Buffer) => got.push(d))
      up.socket.write(query('SELECT current_user'))
      await new Promise((resolve) => setTimeout(resolve, 200))
      t.match(Buffer.concat(got).toString('latin1'), user, `${user}: the session is the target's user`)
      up.socket.end(terminate())
      const err = await connectUpstream(new URL(`postgres://${user}:wrong@127.0.0.1:${port}/postgres`), { timeoutMs: 5000, applicationName: 'x' }).catch((e: unknown) => e)
      t.ok(err instanceof UpstreamError, `${user}: a wrong password is refused`)
      t.equal((err as UpstreamError).message, 'the upstream database refused the gateway\'s login')
      t.notMatch((err as UpstreamError).message, /wrong|pass/, 'the message an agent may see names no credential')
    }
    const down = await connectUpstream(new URL('postgres://x:y@127.0.0.1:1/postgres'), { timeoutMs: 2000, applicationName: 'x' }).catch((e: unknown) => e)
    t.equal((down as UpstreamError).message, 'the upstream database is unreachable')

    // sslmode as libpq means it, for the sessions and for the catalog's own connections alike.
    const upstream = (mode?: string): URL => new URL(`postgres://scram_user:scram-pass@127.0.0.1:${port}/postgres${mode === undefined ? '' : `?sslmode=${mode}`}`)
    const sessionTls = async (u: URL): Promise<string> => {
      const up = await connectUpstream(u, { timeoutMs: 5000, applicationName: 'lineage:test' })
      const got: Buffer[] = []
      up.socket.on('data', (d: Buffer) => got.push(d))
      // Read up to the query's ReadyForQuery ('Z', length 5, status 'I'), however long a loaded machine takes.
      const ready = Buffer.from([0x5a, 0, 0, 0, 5, 0x49])
      const answered = new Promise<void>((resolve) => {
        up.socket.on('data', () => { if (Buffer.concat(got).subarray(-ready.length).equals(ready)) resolve() })
        up.socket.once('close', () => resolve())
      })
      up.socket.write(query("SELECT 'tls=' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))
      await answered
      up.socket.end(terminate())
      return /tls=(true|false)/.exec(Buffer.concat(got).toString('latin1'))?.[1] ?? 'unknown'
    }
    t.equal(await sessionTls(upstream()), 'true', 'no sslmode: prefer, libpq\'s default, uses the TLS the server offers')
    t.equal(await sessionTls(upstream('prefer')), 'true')
    t.equal(await sessionTls(upstream('require')), 'true')
    t.equal(await sessionTls(upstream('disable')), 'false')
    t.equal(await sessionTls(upstream('allow')), 'false')
    const unverified = await connectUpstream(upstream('verify-full'), { timeoutMs: 5000, applicationName: 'x' }).catch((e: unknown) => e)
    t.equal((unverified as UpstreamError).message, 'the upstream database is unreachable', 'verify-full refuses a certificate no authority signed')
    for (const mode of ['require', 'prefer']) {
      const catalog = new Catalog(upstream(mode))
      await catalog.readFunctions(['lower'])
      t.equal(catalog.mayWrite('lower'), false, `sslmode=${mode}: the catalog reads over TLS without checking the certificate, as the sessions do`)
      await catalog.close()
    }
  })
}

t.test('an upstream that says the login is done before SCRAM has it prove the password is not taken for the target', async (t) => {
  // It asks for SCRAM-SHA-256, then answers the client's first message with AuthenticationOk: what a server that never held the password would do.
  const fake = createServer((s) => {
    let step = 0
    s.on('data', () => {
      if (step++ === 0) s.write(new Writer().uint32(10).cstring('SCRAM-SHA-256').byte(0).frame(BackendCode.Authentication))
      else s.write(Buffer.concat([new Writer().uint32(0).frame(BackendCode.Authentication), new Writer().byte(0x49).frame(BackendCode.ReadyForQuery)]))
    })
    s.on('error', () => {})
  })
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { fake.close() })
  const url = new URL(`postgres://app:secret@127.0.0.1:${(fake.address() as AddressInfo).port}/shop?sslmode=disable`)
  const err = await connectUpstream(url, { timeoutMs: 2000, applicationName: 'x' }).catch((e: unknown) => e)
  t.ok(err instanceof UpstreamError, 'refused')
  t.equal((err as UpstreamError).message, 'the upstream database broke the protocol during login')
})

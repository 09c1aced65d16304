import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { connect, TLSSocket } from 'node:tls'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { loadTlsContext } from '../../../src/gateway/pg/tls.js'

t.test('a certificate is generated once in the data directory, its key readable by the owner only, and reused', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lineage-tls-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  await loadTlsContext({ dataDir: dir })
  const cert = await readFile(join(dir, 'gateway-tls-cert.pem'), 'utf8')
  t.match(cert, /^-----BEGIN CERTIFICATE-----/)
  t.equal((await stat(join(dir, 'gateway-tls-key.pem'))).mode & 0o777, 0o600)
  await loadTlsContext({ dataDir: dir })
  t.equal(await readFile(join(dir, 'gateway-tls-cert.pem'), 'utf8'), cert, 'the same certificate after a restart')
})

t.test('half a pair left in the data directory (a stop between the two files) is replaced, not a failure at every start', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lineage-tls-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  await writeFile(join(dir, 'gateway-tls-key.pem'), 'a key whose certificate was never written', { mode: 0o600 })
  await loadTlsContext({ dataDir: dir })
  t.match(await readFile(join(dir, 'gateway-tls-cert.pem'), 'utf8'), /^-----BEGIN CERTIFICATE-----/)
  const cert = await readFile(join(dir, 'gateway-tls-cert.pem'), 'utf8')
  await loadTlsContext({ dataDir: dir })
  t.equal(await readFile(join(dir, 'gateway-tls-cert.pem'), 'utf8'), cert, 'the new pair is kept')
  await rm(join(dir, 'gateway-tls-key.pem'))
  await loadTlsContext({ dataDir: dir })
  t.not(await readFile(join(dir, 'gateway-tls-cert.pem'), 'utf8'), cert, 'a certificate whose key is gone is replaced too')
})

t.test('configured files are used as they are and serve a real handshake', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lineage-tls-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  await loadTlsContext({ dataDir: dir })
  const other = join(dir, 'elsewhere')
  const context = await loadTlsContext({ certFile: join(dir, 'gateway-tls-cert.pem'), keyFile: join(dir, 'gateway-tls-key.pem'), dataDir: other })
  await t.rejects(stat(other), 'nothing generated when files are configured')
  // As the gateway does after an SSLRequest: TLS on an accepted socket.
  const server = createServer((raw) => { new TLSSocket(raw, { isServer: true, secureContext: context }).end('ok') })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const port = (server.address() as { port: number }).port
  const got = await new Promise<string>((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => { s.once('data', (d) => { resolve(d.toString()); s.destroy() }) })
    s.on('error', reject)
  })
  t.equal(got, 'ok')
})

t.test('a configured file that cannot serve stops the start naming its variable and file, not with OpenSSL\'s bare "no start line"', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lineage-tls-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const [a, b] = [join(dir, 'a'), join(dir, 'b')]
  await loadTlsContext({ dataDir: a })
  await loadTlsContext({ dataDir: b })
  const cert = join(a, 'gateway-tls-cert.pem')
  const key = join(a, 'gateway-tls-key.pem')
  const garbage = join(dir, 'garbage.pem')
  await writeFile(garbage, 'not a PEM file\n')
  const cases: Array<[string, string, RegExp]> = [
    [join(dir, 'missing.pem'), key, /^LINEAGE_TLS_CERT: cannot read .*missing\.pem: ENOENT/],
    [cert, join(dir, 'missing.pem'), /^LINEAGE_TLS_KEY: cannot read .*missing\.pem: ENOENT/],
    [garbage, key, /^LINEAGE_TLS_CERT: .*garbage\.pem is not a PEM certificate/],
    [cert, garbage, /^LINEAGE_TLS_KEY: .*garbage\.pem is not a PEM private key/],
    [cert, cert, /^LINEAGE_TLS_KEY: .*gateway-tls-cert\.pem is not a PEM private key/],
    [cert, join(b, 'gateway-tls-key.pem'), /^LINEAGE_TLS_KEY: .* is not the private key of the certificate in /]
  ]
  for (const [certFile, keyFile, message] of cases) {
    await t.rejects(loadTlsContext({ certFile, keyFile, dataDir: dir }), { name: 'ConfigError', message }, String(message))
  }
})

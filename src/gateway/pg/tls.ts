import { readFile, writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { createSecureContext, type SecureContext } from 'node:tls'
import { generate } from 'selfsigned'
import { ConfigError } from '../../errors.js'

/**
 * The pair `LINEAGE_TLS_CERT` and `LINEAGE_TLS_KEY` name. OpenSSL's errors ("PEM routines::no
 * start line", "key values mismatch") name neither the file nor the variable: each is checked
 * alone first, so the line that stops the start says which one is at fault.
 * @throws ConfigError naming the variable.
 */
async function configured (certFile: string, keyFile: string): Promise<SecureContext> {
  const use = async <T>(variable: string, file: string, fn: (pem: Buffer) => T): Promise<T> => {
    let pem: Buffer
    try {
      pem = await readFile(file)
    } catch (err) {
      throw new ConfigError(variable, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    }
    try {
      return fn(pem)
    } catch (err) {
      throw new ConfigError(variable, `${file} is not a PEM ${variable === 'LINEAGE_TLS_CERT' ? 'certificate' : 'private key'} (${(err as Error).message})`)
    }
  }
  const cert = await use('LINEAGE_TLS_CERT', certFile, (pem) => { createSecureContext({ cert: pem }); return pem })
  const key = await use('LINEAGE_TLS_KEY', keyFile, (pem) => { createSecureContext({ key: pem }); return pem })
  try {
    return createSecureContext({ cert, key })
  } catch (err) {
    throw new ConfigError('LINEAGE_TLS_KEY', `${keyFile} is not the private key of the certificate in ${certFile} (${(err as Error).message})`)
  }
}

/**
 * The PostgreSQL gateway's TLS identity: `LINEAGE_TLS_CERT`/`LINEAGE_TLS_KEY` when given,
 * else a self-signed EC certificate generated once in `LINEAGE_DATA_DIR` (kept across
 * restarts, so a client that pinned it keeps working).
 * @throws ConfigError naming LINEAGE_TLS_CERT or LINEAGE_TLS_KEY when a configured file cannot serve.
 */
export async function loadTlsContext (opts: { certFile?: string, keyFile?: string, dataDir: string }): Promise<SecureContext> {
  if (opts.certFile !== undefined && opts.keyFile !== undefined) return await configured(opts.certFile, opts.keyFile)
  const certPath = join(opts.dataDir, 'gateway-tls-cert.pem')
  const keyPath = join(opts.dataDir, 'gateway-tls-key.pem')
  const kept = async (): Promise<SecureContext> => createSecureContext({ cert: await readFile(certPath), key: await readFile(keyPath) })
  try {
    return await kept()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const made = await generate([{ name: 'commonName', value: 'lineage-gateway' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + 825 * 86_400_000),
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }, { type: 7, ip: '::1' }] }]
  })
  await mkdir(opts.dataDir, { recursive: true, mode: 0o700 })
  // `wx`: when two processes start together on one data dir, the first one's pair wins.
  try {
    await writeFile(keyPath, made.private, { mode: 0o600, flag: 'wx' })
    await writeFile(certPath, made.cert, { mode: 0o644, flag: 'wx' })
    return createSecureContext({ cert: made.cert, key: made.private })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
  // Another process is writing its pair; or one stopped between the two files, or a file was
  // removed, and what is left is half a pair, which would fail every start from now on.
  for (let i = 0; i < 10; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    try {
      return await kept()
    } catch {}
  }
  await writeFile(keyPath, made.private, { mode: 0o600 })
  await writeFile(certPath, made.cert, { mode: 0o644 })
  return createSecureContext({ cert: made.cert, key: made.private })
}

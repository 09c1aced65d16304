import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto'

/**
 * The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL uses it, for the
 * gateway's login to an upstream. Written here because the gateway speaks the protocol
 * itself after login (it relays and rewrites messages), and node-postgres keeps its SCRAM
 * code internal. No channel binding (`n,,`): the upstream link is the operator's own network.
 */
export class ScramClient {
  private readonly nonce: string
  private readonly first: string
  private serverSignature: Buffer | undefined
  /** The server proved it knew the password (`verify` passed). */
  verified = false

  /**
   * @param password the upstream password
   * @param opts.user the SCRAM user name: PostgreSQL takes the user from the startup message and ignores this one, so it is empty, as libpq sends it
   * @param opts.nonce the client nonce (tests use the RFC's)
   */
  constructor (private readonly password: string, opts: { user?: string, nonce?: string } = {}) {
    this.nonce = opts.nonce ?? randomBytes(18).toString('base64')
    this.first = `n=${opts.user ?? ''},r=${this.nonce}`
  }

  /** The SASLInitialResponse data. */
  initial (): Buffer {
    return Buffer.from(`n,,${this.first}`)
  }

  /**
   * The SASLResponse data for the server-first message.
   * @throws Error when the server's message is malformed or its nonce does not extend ours.
   */
  respond (serverFirst: Buffer): Buffer {
    const text = serverFirst.toString()
    const attrs = parseAttributes(text)
    const nonce = attrs.get('r')
    const salt = attrs.get('s')
    const iterations = Number(attrs.get('i'))
    if (nonce === undefined || salt === undefined || !nonce.startsWith(this.nonce) || nonce.length === this.nonce.length) throw new Error('SCRAM: bad server nonce')
    if (!Number.isInteger(iterations) || iterations < 1 || iterations > 10_000_000) throw new Error('SCRAM: bad iteration count')
    // RFC 5802 §3: SaltedPassword := Hi(Normalize(password), salt, i). PostgreSQL applies
    // SASLprep where it can and uses the raw bytes otherwise; NFKC is its common case.
    const salted = pbkdf2Sync(this.password.normalize('NFKC'), Buffer.from(salt, 'base64'), iterations, 32, 'sha256')
    const clientKey = hmac(salted, 'Client Key')
    const storedKey = createHash('sha256').update(clientKey).digest()
    const withoutProof = `c=biws,r=${nonce}`
    const authMessage = `${this.first},${text},${withoutProof}`
    const clientSignature = hmac(storedKey, authMessage)
    const proof = Buffer.alloc(32)
    for (let i = 0; i < 32; i++) proof[i] = clientKey[i] ^ clientSignature[i]
    this.serverSignature = hmac(hmac(salted, 'Server Key'), authMessage)
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`)
  }

  /**
   * Checks the server-final message: the server proves it knew the password too.
   * @throws Error when the signature is missing or wrong.
   */
  verify (serverFinal: Buffer): void {
    const v = parseAttributes(serverFinal.toString()).get('v')
    const got = v === undefined ? Buffer.alloc(0) : Buffer.from(v, 'base64')
    if (this.serverSignature === undefined || got.length !== 32 || !timingSafeEqual(got, this.serverSignature)) throw new Error('SCRAM: the server signature does not match')
    this.verified = true
  }
}

function hmac (key: Buffer, text: string): Buffer {
  return createHmac('sha256', key).update(text).digest()
}

function parseAttributes (text: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const part of text.split(',')) {
    const eq = part.indexOf('=')
    if (eq === 1) out.set(part[0], part.slice(2))
  }
  return out
}

/** PostgreSQL's md5 password answer: "md5" + md5(md5(password + user) + salt). */
export function md5Password (user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5').update(password + user).digest('hex')
  return 'md5' + createHash('md5').update(Buffer.concat([Buffer.from(inner), salt])).digest('hex')
}

import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { constants } from 'node:os'
import { basename } from 'node:path'
import { parseArgs } from 'node:util'
import { adminCall, BrokerError, exchangeToken, revokeOwn, type ExchangeOptions } from './broker-client.js'
import { decodeToken, describeToken } from './inspect.js'
import { renderTree, type TreeNode } from './tree.js'
import { openPostgres } from '../storage/postgres.js'
import { parseAnchor, verifyAudit, type VerifyResult } from '../audit/verify.js'

const help = `lineage: identity-lineage token broker, command-line tool

Usage:
  lineage exchange [--scope S] [--audience A]... [--actor NAME] [--ttl SECONDS]
      Exchange the token in LINEAGE_TOKEN for a narrower child token and print it.
  lineage exec [--scope S] [--audience A]... [--actor NAME] [--ttl SECONDS] -- CMD [ARGS...]
      Exchange LINEAGE_TOKEN for a child token and run CMD with the child in LINEAGE_TOKEN.
      The actor defaults to CMD's name; CMD does not get LINEAGE_ADMIN_TOKEN, nor
      LINEAGE_SCIM_TOKEN, LINEAGE_WEBHOOK_SECRET or LINEAGE_OKTA_AUTHORIZATION. SIGINT,
      SIGTERM, SIGHUP, SIGQUIT and SIGUSR2 are passed on to CMD (not SIGINT and SIGQUIT in a
      terminal's foreground, where Ctrl-C reaches CMD itself). Exits with CMD's exit code
      (128 + the signal's number when a signal ended it), or 127 when CMD cannot start, its
      token then revoked.
  lineage token inspect [TOKEN] [--json]
      Decode a token (default: LINEAGE_TOKEN) and show its chain as a tree. Does not verify.
  lineage tree JTI
      Draw the lineage tree below token JTI with each token's status (needs LINEAGE_ADMIN_TOKEN).
  lineage audit verify [--anchor SEQ:HASH]
      Re-compute the audit trail's hash chain and report the first edited, removed or
      reordered record; when intact, print its head (SEQ:HASH). Keep the head outside the
      database: --anchor checks that the record still has that hash, which whoever can
      rewrite the whole chain cannot keep. Reads DATABASE_URL directly when it is set;
      otherwise asks the broker (needs LINEAGE_ADMIN_TOKEN). Exits 0 when intact, 3 when
      broken, 1 when the check could not be made (broker or database unreachable, refused),
      2 on a usage error (LINEAGE_ADMIN_TOKEN not set included), as every command does.
  lineage keys rotate
      Add a new signing key (needs LINEAGE_ADMIN_TOKEN); tokens signed by the old key stay
      valid until they expire.
  lineage help, lineage COMMAND --help

Environment:
  LINEAGE_URL          broker URL, a path prefix included (default http://127.0.0.1:7400)
  LINEAGE_TOKEN        the current process's token
  LINEAGE_ADMIN_TOKEN  admin token, for 'tree', 'audit verify' and 'keys rotate'
  DATABASE_URL         PostgreSQL, for 'audit verify' without the broker
`

type Env = Record<string, string | undefined>

class UsageError extends Error {}

/** `audit verify`'s exit code for a trail found edited, removed from or reordered. */
const brokenTrail = 3

const exchangeFlags = {
  scope: { type: 'string' },
  audience: { type: 'string', multiple: true },
  actor: { type: 'string' },
  ttl: { type: 'string' }
} as const

function exchangeOptions (values: { scope?: string, audience?: string[], actor?: string, ttl?: string }): ExchangeOptions {
  return { scope: values.scope, audience: values.audience ?? [], actor: values.actor, ttl: values.ttl }
}

function currentToken (env: Env): string {
  const t = env.LINEAGE_TOKEN
  if (t === undefined || t === '') throw new UsageError('LINEAGE_TOKEN is not set: this process has no token to exchange')
  return t
}

/** `LINEAGE_URL`, or the default broker when it is unset or empty (an empty value never means "nothing"). */
function brokerUrl (env: Env): string {
  const raw = env.LINEAGE_URL
  if (raw === undefined || raw === '') return 'http://127.0.0.1:7400'
  // What comes before an `@` may be a password: it is not echoed.
  const shown = raw.includes('@') ? `…${raw.slice(raw.lastIndexOf('@'))}` : raw
  const u = URL.canParse(raw) ? new URL(raw) : undefined
  if (u === undefined || !['http:', 'https:'].includes(u.protocol)) throw new UsageError(`LINEAGE_URL must be the broker's http or https URL, got "${shown.slice(0, 200)}"`)
  // fetch refuses a URL with credentials, and every error would print them with the URL.
  if (u.username !== '' || u.password !== '') throw new UsageError(`LINEAGE_URL must not hold a user or password (${shown.slice(0, 200)}): the CLI sends none`)
  return raw
}

async function runExchange (args: string[], env: Env): Promise<number> {
  const { values } = parseArgs({ args, options: exchangeFlags, strict: true })
  const out = await exchangeToken(brokerUrl(env), currentToken(env), exchangeOptions(values), env)
  process.stdout.write(out.access_token + '\n')
  return 0
}

/**
 * What `exec` passes on to its command. Without a listener, one of these would end lineage
 * alone and leave the command running, its token still live. SIGUSR1 stays Node's own (it
 * starts the inspector).
 */
const forwardedSignals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR2']

/** The signals a terminal's keys (Ctrl-C, Ctrl-\) send to its whole foreground process group. */
const keyboardSignals = new Set<NodeJS.Signals>(['SIGINT', 'SIGQUIT'])

/**
 * Whether this process is in its controlling terminal's foreground process group (Linux's
 * /proc: the stat fields pgrp and tpgid). The command shares that group, so a key the terminal
 * turns into a signal reaches it directly; passed on as well, Ctrl-C would arrive twice, and
 * a command that stops gracefully on the first and at once on the second would get no grace.
 */
function inForeground (): boolean {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return Number(fields[5]) > 0 && fields[5] === fields[2]
  } catch {
    return false
  }
}

/** Lineage's own secrets, which a process `exec` starts is never given. */
const lineageSecrets = new Set(['LINEAGE_ADMIN_TOKEN', 'LINEAGE_SCIM_TOKEN', 'LINEAGE_WEBHOOK_SECRET', 'LINEAGE_OKTA_AUTHORIZATION'])

async function runExec (args: string[], env: Env): Promise<number> {
  const dash = args.indexOf('--')
  if (dash < 0 || dash === args.length - 1) throw new UsageError('exec needs a command after --')
  const { values } = parseArgs({ args: args.slice(0, dash), options: exchangeFlags, strict: true })
  const [cmd, ...cmdArgs] = args.slice(dash + 1)
  const opts = exchangeOptions(values)
  opts.actor ??= basename(cmd)
  const child = await exchangeToken(brokerUrl(env), currentToken(env), opts, env)
  return await new Promise<number>((resolve) => {
    // The command gets its own narrower token, never the admin's nor the secrets the offboarding
    // inputs check: with the webhook secret it could sign an HR event reinstating its own principal.
    const inherited = Object.fromEntries(Object.entries(env).filter(([name]) => !lineageSecrets.has(name)))
    const p = spawn(cmd, cmdArgs, { stdio: 'inherit', env: { ...inherited, LINEAGE_TOKEN: child.access_token } })
    const forward = (sig: NodeJS.Signals): void => {
      if (keyboardSignals.has(sig) && inForeground()) return
      p.kill(sig)
    }
    for (const sig of forwardedSignals) process.on(sig, forward)
    p.on('error', (err) => {
      process.stderr.write(`lineage: cannot run ${cmd}: ${err.message}\n`)
      // Also emitted when a signal cannot be passed on; only a command that never started has no pid.
      if (p.pid !== undefined) return
      // No process holds the token made for it: it is revoked rather than left live until it expires.
      void revokeOwn(brokerUrl(env), child.access_token).then((done) => {
        if (!done) process.stderr.write('lineage: the token made for it could not be revoked; it lives until it expires\n')
        resolve(127)
      })
    })
    // A child ended by a signal exits 128 + its number, as a shell reports it.
    p.on('exit', (code, signal) => resolve(code ?? (signal !== null ? 128 + (constants.signals[signal] ?? 15) : 1)))
  })
}

async function runToken (args: string[], env: Env): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { json: { type: 'boolean' } }, allowPositionals: true, strict: true })
  if (positionals[0] !== 'inspect') throw new UsageError('usage: lineage token inspect [TOKEN] [--json]')
  const token = positionals[1] ?? currentToken(env)
  if (values.json === true) {
    process.stdout.write(JSON.stringify(decodeToken(token), null, 2) + '\n')
  } else {
    process.stdout.write(describeToken(token, Math.floor(Date.now() / 1000)) + '\n')
  }
  return 0
}

function adminToken (env: Env): string {
  const admin = env.LINEAGE_ADMIN_TOKEN
  if (admin === undefined || admin === '') throw new UsageError('LINEAGE_ADMIN_TOKEN is not set')
  return admin
}

async function runTree (args: string[], env: Env): Promise<number> {
  if (args.length !== 1) throw new UsageError('usage: lineage tree JTI')
  const tree = await adminCall(brokerUrl(env), adminToken(env), 'GET', `/v1/tokens/${encodeURIComponent(args[0])}/tree`, ['jti', 'children']) as TreeNode
  process.stdout.write(renderTree(tree) + '\n')
  return 0
}

/**
 * `DATABASE_URL`, held to what the broker accepts (config.ts): the driver reads anything else as
 * a host name or a socket path, and would answer "getaddrinfo ENOTFOUND base". Not echoed: it may
 * hold a password.
 */
function postgresUrl (env: Env): string | undefined {
  const raw = env.DATABASE_URL
  if (raw === undefined || raw === '') return undefined
  if (!URL.canParse(raw) || !['postgres:', 'postgresql:'].includes(new URL(raw).protocol)) throw new UsageError('DATABASE_URL must be a postgres:// or postgresql:// URL (as the broker takes it); unset it to ask the broker at LINEAGE_URL')
  return raw
}

async function runAudit (args: string[], env: Env): Promise<number> {
  const usage = 'usage: lineage audit verify [--anchor SEQ:HASH]'
  if (args[0] !== 'verify') throw new UsageError(usage)
  const { values, positionals } = parseArgs({ args: args.slice(1), options: { anchor: { type: 'string', multiple: true } }, strict: true, allowPositionals: true })
  if (positionals.length > 0 || (values.anchor?.length ?? 0) > 1) throw new UsageError(usage)
  const given = values.anchor?.[0]
  let anchor
  try { anchor = given === undefined ? undefined : parseAnchor(given) } catch (err) { throw new UsageError(`${(err as Error).message}\n${usage}`) }
  // Through the broker, `unwritten` counts what its database did not take before the check.
  let result: VerifyResult & { unwritten?: number }
  const databaseUrl = postgresUrl(env)
  if (databaseUrl !== undefined) {
    const db = openPostgres(databaseUrl, { max: 1 })
    try {
      result = await verifyAudit(db, { anchor })
    } catch (err) {
      // 42P01 undefined_table: DATABASE_URL is some other database (set for an agent's own tests, say).
      if ((err as { code?: unknown }).code === '42P01') throw new Error(`DATABASE_URL names a database with no Lineage audit trail (${(err as Error).message}); point it at Lineage's database, or unset it to ask the broker at LINEAGE_URL`)
      throw err
    } finally { await db.close() }
  } else {
    result = await adminCall(brokerUrl(env), adminToken(env), 'POST', '/v1/audit/verify', ['ok', 'records'], given === undefined ? undefined : { anchor: given }) as VerifyResult & { unwritten?: number }
  }
  if (result.unwritten !== undefined) process.stdout.write(`the broker holds ${result.unwritten} records its database did not take: they are not in the chain checked\n`)
  if (result.ok) {
    const head = result.head === undefined ? '' : `; head ${result.head.seq}:${result.head.hash}`
    process.stdout.write(`audit trail intact: ${result.records} records, hash chain verified${anchor === undefined ? '' : ` through anchored record ${anchor.seq}`}${head}\n`)
    if (result.dropped !== undefined) process.stdout.write(`but ${result.dropped.events} events were dropped unrecorded, in ${result.dropped.gaps} ${result.dropped.gaps === 1 ? 'gap' : 'gaps'} marked by audit.dropped records (the buffer was full while writes failed)\n`)
    return 0
  }
  process.stdout.write(`audit trail BROKEN after ${result.records} good records: ${result.problem ?? 'unknown problem'}\n`)
  // Its own code, so that a script tells a trail found edited from one it could not check (1).
  return brokenTrail
}

async function runKeys (args: string[], env: Env): Promise<number> {
  if (args[0] !== 'rotate' || args.length !== 1) throw new UsageError('usage: lineage keys rotate')
  const out = await adminCall(brokerUrl(env), adminToken(env), 'POST', '/v1/keys/rotate', ['kid']) as { kid: string }
  process.stdout.write(`new signing key ${out.kid}; tokens signed by earlier keys stay valid until they expire\n`)
  return 0
}

/** Runs one CLI command; returns the exit code. */
export async function cli (argv: string[], env: Env): Promise<number> {
  const [command, ...rest] = argv
  // `lineage exec --help` asks for help; after `--` the words are the command's own.
  const own = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest
  if (command !== undefined && (own.includes('--help') || own.includes('-h'))) {
    process.stdout.write(help)
    return 0
  }
  try {
    switch (command) {
      case 'exchange': return await runExchange(rest, env)
      case 'exec': return await runExec(rest, env)
      case 'token': return await runToken(rest, env)
      case 'tree': return await runTree(rest, env)
      case 'keys': return await runKeys(rest, env)
      case 'audit': return await runAudit(rest, env)
      case undefined: case 'help': case '--help': case '-h':
        process.stdout.write(help)
        return command === undefined ? 2 : 0
      default:
        throw new UsageError(`unknown command "${command}"; see lineage help`)
    }
  } catch (err) {
    if (err instanceof BrokerError || err instanceof UsageError) {
      process.stderr.write(`lineage: ${err.message}\n`)
      return err instanceof UsageError ? 2 : 1
    }
    if (err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`lineage: ${err.message}\n`)
      return 2
    }
    if (err instanceof Error) {
      process.stderr.write(`lineage: ${err.message}\n`)
      return 1
    }
    throw err
  }
}

process.exitCode = await cli(process.argv.slice(2), process.env)

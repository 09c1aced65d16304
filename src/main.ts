import { loadConfig } from './config.js'
import { ConfigError } from './errors.js'
import { createLogger } from './log.js'
import { start } from './server.js'

/** `npm start`: reads the environment, starts the listeners, prints `{"listening":…}`. */
async function main (): Promise<void> {
  let config
  try {
    config = loadConfig(process.env)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`lineage: bad configuration: ${err.message}\n`)
      process.exit(2)
    }
    throw err
  }
  const log = createLogger(config.logLevel)
  let running
  try {
    running = await start(config, log)
  } catch (err) {
    // A listener that cannot bind is configuration too: the line names its variable.
    if (err instanceof ConfigError) {
      process.stderr.write(`lineage: bad configuration: ${err.message}\n`)
      process.exit(2)
    }
    process.stderr.write(`lineage: cannot start: ${(err as Error).message}\n`)
    process.exit(1)
  }
  const first = running.broker?.firstAdminToken
  if (first !== undefined) {
    process.stdout.write(`Admin token (shown once, store it now): ${first}\n`)
  }
  process.stdout.write(JSON.stringify({ listening: running.listening }) + '\n')
  log.info({ role: config.role, listening: running.listening, database: running.db.kind }, 'started')

  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    log.info({ signal }, 'stopping')
    running.stop().then(() => process.exit(0), (err) => {
      log.error({ err }, 'stop failed')
      process.exit(1)
    })
  }
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))
  // The terminal it runs in closing: stopped as gracefully, where Node's default would end it at once, records unwritten.
  process.on('SIGHUP', () => stop('SIGHUP'))
  // Under `npm start`, a SIGTERM sent to npm alone (`docker stop` when npm is PID 1) ends npm and
  // its shell but is not passed on: the process, left to another parent, stops as if it had got it.
  if (config.underNpmStart) {
    const parent = process.ppid
    setInterval(() => { if (process.ppid !== parent) stop('parent exited') }, 500).unref()
  }
}

await main()

import pino from 'pino'

export type Logger = pino.Logger

/**
 * Structured JSON logs on stderr (stdout carries the `{"listening":…}` line). Anything that
 * looks like a credential is redacted by path, so a careless log call cannot print one.
 */
export function createLogger (level: string): Logger {
  return pino({
    level,
    base: { service: 'lineage' },
    redact: {
      paths: ['*.authorization', '*.client_secret', '*.subject_token', '*.actor_token', '*.token', '*.password', 'headers.authorization', 'req.headers.authorization'],
      censor: '[redacted]'
    }
  }, pino.destination(2))
}

/** A logger that drops everything, for tests. */
export function silentLogger (): Logger {
  return pino({ level: 'silent' })
}

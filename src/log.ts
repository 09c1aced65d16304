import pino, { type DestinationStream } from 'pino'

export type Logger = pino.Logger

/**
 * Structured JSON logs on stderr (stdout carries the `{"listening":…}` line). Anything that
 * looks like a credential is redacted by path, so a careless log call cannot print one.
 * @param destination where the lines go; stderr unless given (tests capture them).
 */
export function createLogger (level: string, destination: DestinationStream = pino.destination(2)): Logger {
  return pino({
    level,
    base: { service: 'lineage' },
    redact: {
      paths: [
        '*.authorization', '*.client_secret', '*.subject_token', '*.actor_token', '*.token', '*.password', 'headers.authorization', 'req.headers.authorization',
        // A database error carries what it was about: PGlite the statement's bound values
        // (`params`), PostgreSQL a refused row (`detail`: "Failing row contains (…)"), a
        // target's upstream password and headers among them.
        'err.params', 'err.detail', 'err.cause.params', 'err.cause.detail'
      ],
      censor: '[redacted]'
    }
  }, destination)
}

/** A logger that drops everything, for tests. */
export function silentLogger (): Logger {
  return pino({ level: 'silent' })
}

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/** The process's Prometheus metrics; one registry per process, passed to whatever counts. */
export interface Metrics {
  registry: Registry
  /** Tokens issued, by grant (`client_credentials`, `token_exchange`). */
  tokensIssued: Counter<'grant'>
  /** Token requests refused, by their OAuth `error` code. */
  tokenRefusals: Counter<'error'>
  /** Gateway decisions by target and decision (`allow`, `deny`). */
  gatewayRequests: Counter<'target' | 'decision'>
  /** Time the gateway spends deciding a request (verify, chain check, scope, policy). */
  checkSeconds: Histogram<'target'>
  /** Statements the PostgreSQL gateway relayed (`allow`) or refused (`deny`), by target. */
  pgStatements: Counter<'target' | 'decision'>
  /** PostgreSQL gateway sessions open now, by target. */
  pgSessions: Gauge<'target'>
}

/** A value read at scrape time. */
export interface ReadAtScrape { help: string, read: () => number }

/**
 * Builds the registry. `gauges` (audit backlog, view freshness…) and `totals` (counts that only
 * grow: events dropped, parsers replaced) are read at scrape time, so nothing on the request
 * path updates them. A total is exposed as a counter, which `rate()` and `increase()` need.
 */
export function createMetrics (gauges: Record<string, ReadAtScrape> = {}, totals: Record<string, ReadAtScrape> = {}): Metrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'lineage_' })
  for (const [name, g] of Object.entries(gauges)) {
    new Gauge({ name, help: g.help, registers: [registry], collect () { this.set(g.read()) } })
  }
  for (const [name, c] of Object.entries(totals)) {
    new Counter({ name, help: c.help, registers: [registry], collect () { this.reset(); this.inc(c.read()) } })
  }
  return {
    registry,
    tokensIssued: new Counter({ name: 'lineage_tokens_issued_total', help: 'Tokens issued, by grant', labelNames: ['grant'], registers: [registry] }),
    tokenRefusals: new Counter({ name: 'lineage_token_refusals_total', help: 'Token requests refused, by OAuth error code', labelNames: ['error'], registers: [registry] }),
    gatewayRequests: new Counter({ name: 'lineage_gateway_requests_total', help: 'Gateway decisions, by target and decision', labelNames: ['target', 'decision'], registers: [registry] }),
    checkSeconds: new Histogram({
      name: 'lineage_gateway_check_seconds',
      help: 'Time to decide a gateway request: signature, chain, scope, policy',
      labelNames: ['target'],
      buckets: [0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05],
      registers: [registry]
    }),
    pgStatements: new Counter({ name: 'lineage_gateway_pg_statements_total', help: 'PostgreSQL gateway statements, by target and decision', labelNames: ['target', 'decision'], registers: [registry] }),
    pgSessions: new Gauge({ name: 'lineage_gateway_pg_sessions', help: 'PostgreSQL gateway sessions open, by target', labelNames: ['target'], registers: [registry] })
  }
}

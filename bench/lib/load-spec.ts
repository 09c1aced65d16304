import type { Latency } from './stats.js'

/** Lineage: chains of exchanges, depth 1 to `maxDepth`, each chain starting from a root token. */
export interface ExchangeLoad {
  kind: 'exchange'
  /** The broker's token endpoint. */
  tokenUrl: string
  /** Root tokens the chains start from, obtained (and not counted) in setup. */
  roots: string[]
  maxDepth: number
}

/** The peer: the same form POST again and again (client_credentials). */
export interface RepeatLoad {
  kind: 'repeat'
  tokenUrl: string
  headers: Record<string, string>
  form: Record<string, string>
}

export interface LoadSpec {
  scenario: ExchangeLoad | RepeatLoad
  /** Requests in flight at once, each on its own keep-alive connection. */
  concurrency: number
  /** Unmeasured load first, so JIT, pools and caches are warm. */
  warmupMs: number
  /** Measured requests. */
  requests: number
  /** Return the `jti` of every token issued in the measured phase (for the durability check). */
  collectJtis: boolean
}

export interface LoadResult {
  requests: number
  ok: number
  errors: number
  /** A few non-200 answers, `status body`. */
  errorSamples: string[]
  elapsedMs: number
  /** Successful requests per second over the measured phase. */
  rate: number
  /** Latency of every measured request, successful or not. */
  latency: Latency
  warmupRequests: number
  /** CPU time the load generator itself used per request (warm-up and measured), in µs. */
  generatorCpuUsPerRequest: number
  jtis: string[]
}

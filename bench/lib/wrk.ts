import { runMeasured } from './measured-run.js'

export interface WrkResult {
  requests: number
  seconds: number
  /** Requests per second, as wrk prints it (all responses, whatever their status). */
  rate: number
  /** Latency percentiles from `--latency`, in ms. */
  p50: number
  p75: number
  p90: number
  p99: number
  /** Responses with a status outside 2xx/3xx. */
  non2xx: number
  /** connect + read + write + timeout errors. */
  socketErrors: number
  /** CPU time wrk itself used (user + system), in ms; NaN without /proc. */
  cpuMs: number
  raw: string
}

export interface WrkOptions {
  threads: number
  connections: number
  seconds: number
  headers: Record<string, string>
  /** A Lua script for wrk (`-s`): the method and body of every request, say. */
  script?: string
}

const unitMs: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

function duration (text: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text)
  if (m === null) throw new Error(`wrk: cannot read the duration "${text}"`)
  return Number(m[1]) * unitMs[m[2]]
}

/** Reads wrk 4's report (run with `--latency`). */
export function parseWrk (raw: string): WrkResult {
  const need = (re: RegExp, what: string): RegExpExecArray => {
    const m = re.exec(raw)
    if (m === null) throw new Error(`wrk: no ${what} in its output:\n${raw}`)
    return m
  }
  const pct = (p: string): number => duration(need(new RegExp(`^\\s+${p}%\\s+(\\S+)$`, 'm'), `${p}% latency`)[1])
  const total = need(/^\s+(\d+) requests in ([\d.]+)(us|ms|s|m|h),/m, 'request count')
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(raw)
  return {
    requests: Number(total[1]),
    seconds: duration(`${total[2]}${total[3]}`) / 1000,
    rate: Number(need(/^Requests\/sec:\s+([\d.]+)/m, 'Requests/sec')[1]),
    p50: pct('50'),
    p75: pct('75'),
    p90: pct('90'),
    p99: pct('99'),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(raw)?.[1] ?? 0),
    socketErrors: socket === null ? 0 : socket.slice(1).reduce((a, b) => a + Number(b), 0),
    cpuMs: Number.NaN,
    raw
  }
}

/** Runs `wrk --latency` against `url` in its own process and parses what it prints, with the CPU time wrk used. */
export async function runWrk (wrk: string, url: string, o: WrkOptions): Promise<WrkResult> {
  const args = [`-t${o.threads}`, `-c${o.connections}`, `-d${o.seconds}s`, '--latency']
  for (const [k, v] of Object.entries(o.headers)) args.push('-H', `${k}: ${v}`)
  if (o.script !== undefined) args.push('-s', o.script)
  args.push(url)
  const r = await runMeasured(wrk, args)
  if (r.code !== 0) throw new Error(`wrk exited with ${r.code}: ${r.stderr}${r.stdout}`)
  return { ...parseWrk(r.stdout), cpuMs: r.cpuMs }
}

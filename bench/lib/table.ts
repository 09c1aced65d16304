/** Renders rows as a fixed-width table; the first column left-aligned, the rest right-aligned. */
export function table (header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]): string => cells.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join('  ')
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

/** A number with `digits` decimals. */
export function fixed (x: number, digits = 1): string {
  return Number.isFinite(x) ? x.toFixed(digits) : 'n/a'
}

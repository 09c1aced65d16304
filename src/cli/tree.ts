/** A node of `GET /v1/tokens/{jti}/tree`, as far as drawing it needs. */
export interface TreeNode {
  jti: string
  depth: number
  sub: string
  actor: string | null
  scope: string
  status: string
  status_reason?: string
  children: TreeNode[]
}

const marks: Record<string, string> = { active: '●', revoked: '✕', expired: '○' }

/** Draws a lineage tree, one token a line, with its actor, scope and status. */
export function renderTree (root: TreeNode): string {
  const lines: string[] = []
  const walk = (n: TreeNode, prefix: string, last: boolean, top: boolean): void => {
    const who = n.actor === null ? `${n.sub} (root)` : n.actor
    const why = n.status_reason !== undefined ? ` (${n.status_reason})` : ''
    lines.push(`${top ? '' : prefix + (last ? '└─ ' : '├─ ')}${marks[n.status] ?? '?'} ${who}  [${n.scope}]  ${n.status}${why}  ${n.jti.slice(0, 8)}`)
    const next = top ? '' : prefix + (last ? '   ' : '│  ')
    n.children.forEach((c, i) => walk(c, next, i === n.children.length - 1, false))
  }
  walk(root, '', true, true)
  return lines.join('\n')
}

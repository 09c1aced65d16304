import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { spawnChild, type Child } from './child.js'
import { accepting } from './tools.js'

/** The main context of a one-worker nginx in the foreground, its pid, error log and temp files under `dir`. */
export function nginxConfig (dir: string, name: string, http: string): string {
  return `worker_processes 1;
daemon off;
pid ${join(dir, `${name}.pid`)};
error_log ${join(dir, `${name}-error.log`)} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${join(dir, `${name}-body`)};
  proxy_temp_path ${join(dir, `${name}-proxy`)};
  fastcgi_temp_path ${join(dir, `${name}-fastcgi`)};
  uwsgi_temp_path ${join(dir, `${name}-uwsgi`)};
  scgi_temp_path ${join(dir, `${name}-scgi`)};
  keepalive_timeout 65s;
  # nginx closes a client connection after 1,000 requests by default; a benchmark's keep-alive
  # connections should live as long as Node's do.
  keepalive_requests 10000000;
${http}
}
`
}

/**
 * Writes `config` to `<dir>/<name>.conf`, starts `nginx -c <conf> -p <dir>` in the foreground
 * and resolves once `port` accepts connections. Stop it with the returned child's `stop`
 * (SIGTERM: nginx's fast shutdown, which ends its worker too).
 */
export async function startNginx (nginx: string, dir: string, name: string, config: string, port: number): Promise<Child> {
  const conf = join(dir, `${name}.conf`)
  await writeFile(conf, config)
  const child = spawnChild(nginx, ['-e', join(dir, `${name}-error.log`), '-c', conf, '-p', dir], { cwd: dir })
  const deadline = Date.now() + 10_000
  while (!(await accepting(port))) {
    if (child.proc.exitCode !== null || Date.now() > deadline) {
      await child.stop()
      throw new Error(`nginx (${name}) did not start listening on ${port}:\n${child.stderrTail()}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return child
}

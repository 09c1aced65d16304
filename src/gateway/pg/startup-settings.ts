/** A run-time setting a client asked for in its StartupMessage. */
export interface Setting { name: string, value: string }

/** Why a StartupMessage asks for what the gateway cannot honour; the login fails with FATAL 0A000. */
export class UnsupportedStartup extends Error {
  override name = 'UnsupportedStartup'
}

/**
 * Parameters that are not settings (`user`, `database`, `options`, `replication`), or that the
 * gateway sets itself upstream: the application name (`lineage:<actor>`) and UTF8 as the client
 * encoding, which the classifier reads the text in.
 */
const notSettings = new Set(['user', 'database', 'options', 'replication', 'application_name', 'client_encoding'])
// The values of `replication` that ask for an ordinary session: false as PostgreSQL's parse_bool reads it (a prefix of false, no, off, or 0).
const notReplication = new Set(['f', 'fa', 'fal', 'fals', 'false', 'n', 'no', 'of', 'off', '0'])
// What PostgreSQL's settings are called (a custom one has a dot); anything else could be read differently upstream.
const settingName = /^[a-z_][a-z0-9_$]*(\.[a-z_][a-z0-9_$]*)?$/
// isspace() in the C locale, as the server splits `options`.
const space = /[ \t\n\v\f\r]/

/**
 * `options` cut into arguments as the server cuts it (pg_split_opts): at unescaped white space,
 * a backslash escaping the character after it.
 */
function splitOptions (options: string): string[] {
  const out: string[] = []
  let arg: string | undefined
  let escaped = false
  for (const ch of options) {
    if (!escaped && space.test(ch)) {
      if (arg !== undefined) out.push(arg)
      arg = undefined
      continue
    }
    arg ??= ''
    if (!escaped && ch === '\\') { escaped = true; continue }
    escaped = false
    arg += ch
  }
  if (arg !== undefined) out.push(arg)
  return out
}

/** `name=value` as the server reads a `-c` or `--` switch (ParseLongOption): a dash in the name is an underscore. */
function longOption (arg: string): Setting {
  const eq = arg.indexOf('=')
  if (eq < 0) throw new UnsupportedStartup(`startup option "${arg.slice(0, 63)}" has no value`)
  return { name: arg.slice(0, eq).replaceAll('-', '_'), value: arg.slice(eq + 1) }
}

/**
 * The settings a StartupMessage asks for. PostgreSQL applies every parameter other than `user`,
 * `database`, `options` and `replication` as a setting, and reads `options` as command-line
 * switches, of which a client may use `-c name=value` and `--name=value` (protocol docs,
 * StartupMessage; postgres.c process_postgres_switches). Each is then checked as the `SET` it
 * amounts to, and the upstream session opened with them.
 * @param params the StartupMessage's parameters
 * @throws UnsupportedStartup for another switch, a name that is not a setting's, or a replication connection
 */
export function startupSettings (params: Record<string, string>): Setting[] {
  // A walsender speaks replication commands, not SQL the classifier can judge; dropped, the
  // parameter would give the client an ordinary session it did not ask for.
  if (params.replication !== undefined && !notReplication.has(params.replication.toLowerCase())) {
    throw new UnsupportedStartup(`replication connections (replication=${params.replication.slice(0, 63)}) are not served`)
  }
  const asked: Setting[] = Object.entries(params)
    .filter(([name]) => !notSettings.has(name) && !name.startsWith('_pq_.'))
    .map(([name, value]) => ({ name, value }))
  const args = splitOptions(params.options ?? '')
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    if (a === '-c') {
      if (i + 1 >= args.length) throw new UnsupportedStartup('startup option -c has no value')
      asked.push(longOption(args[++i]))
    } else if (a.startsWith('-c')) asked.push(longOption(a.slice(2)))
    else if (a.startsWith('--') && a.length > 2) asked.push(longOption(a.slice(2)))
    else throw new UnsupportedStartup(`startup option "${a.slice(0, 63)}" is not supported; only -c name=value and --name=value are`)
  }
  const out = new Map<string, Setting>()
  for (const s of asked) {
    // Setting names are case-insensitive upstream; the last one given wins, as there.
    const name = s.name.toLowerCase()
    if (!settingName.test(name)) throw new UnsupportedStartup(`startup parameter "${s.name.slice(0, 63)}" is not a setting`)
    if (name === 'application_name' || name === 'client_encoding') continue
    if (notSettings.has(name)) throw new UnsupportedStartup(`startup option ${name} is not a setting`)
    out.delete(name)
    out.set(name, { name, value: s.value })
  }
  return [...out.values()]
}

/** The `SET` statement a setting amounts to, for the classifier. */
export function setStatement (s: Setting): string {
  return `SET "${s.name.replaceAll('"', '""')}" TO '${s.value.replaceAll("'", "''")}'`
}

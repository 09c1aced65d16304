import t from 'tap'
import { loadConfig } from '../src/config.js'
import { ConfigError } from '../src/errors.js'

t.test('defaults follow the contract', async (t) => {
  const c = loadConfig({})
  t.match(c, { host: '127.0.0.1', brokerPort: 7400, gatewayHttpPort: 7401, gatewayPgPort: 7432, role: 'all', maxDepth: 8, maxStalenessMs: 5000 })
  t.equal(c.tlsCertFile, undefined)
})

t.test('a bad value names its variable', async (t) => {
  for (const [name, value] of [['LINEAGE_GATEWAY_PG_PORT', '70000'], ['LINEAGE_MAX_STALENESS_MS', '-1'], ['LINEAGE_ROLE', 'proxy'], ['DATABASE_URL', 'mysql://x']]) {
    let caught: unknown
    try { loadConfig({ [name]: value }) } catch (err) { caught = err }
    t.ok(caught instanceof ConfigError, name)
    t.match((caught as Error).message, name)
  }
})

t.test('a REDIS_URL whose path is no database number is refused at start, where Redis\'s refusal would end the process', async (t) => {
  for (const value of ['redis://127.0.0.1:6379/abc', 'redis://:pw@127.0.0.1:6379/one', 'redis://127.0.0.1:6379?db=x', 'redis://127.0.0.1:6379/0/1']) {
    t.throws(() => loadConfig({ REDIS_URL: value }), { name: 'ConfigError', message: /^REDIS_URL: / }, value)
  }
  for (const value of ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379/', 'redis://:pw@127.0.0.1:6379/3', 'rediss://h:6380?db=2']) {
    t.equal(loadConfig({ REDIS_URL: value }).redisUrl, value, value)
  }
})

t.test('a gateway process needs the database a broker writes, not an embedded one of its own', async (t) => {
  t.throws(() => loadConfig({ LINEAGE_ROLE: 'gateway' }), { name: 'ConfigError', message: /LINEAGE_ROLE.*gateway needs DATABASE_URL/ })
  t.throws(() => loadConfig({ LINEAGE_ROLE: 'gateway', DATABASE_URL: '' }), /DATABASE_URL/)
  t.match(loadConfig({ LINEAGE_ROLE: 'gateway', DATABASE_URL: 'postgres://db/lineage' }), { role: 'gateway' })
  t.match(loadConfig({ LINEAGE_ROLE: 'broker' }), { role: 'broker' }, 'a broker alone may keep an embedded database')
  t.throws(() => loadConfig({ LINEAGE_ROLE: 'gateway', DATABASE_URL: 'postgres://db/lineage', LINEAGE_BROKER_PORT: '0' }), { name: 'ConfigError', message: /^LINEAGE_ISSUER: a gateway process needs the broker's URL/ },
    'with no issuer, a broker port of 0 leaves the gateway nowhere to find the broker\'s keys, and every token refused')
  t.match(loadConfig({ LINEAGE_ROLE: 'gateway', DATABASE_URL: 'postgres://db/lineage', LINEAGE_BROKER_PORT: '0', LINEAGE_ISSUER: 'http://broker:7400' }), { role: 'gateway' })
  t.match(loadConfig({ LINEAGE_BROKER_PORT: '0' }), { brokerPort: 0 }, 'a process running the broker knows the port it bound')
})

t.test('the PostgreSQL gateway\'s TLS certificate and key are given together or not at all', async (t) => {
  t.throws(() => loadConfig({ LINEAGE_TLS_CERT: '/etc/cert.pem' }), /LINEAGE_TLS_KEY/)
  t.throws(() => loadConfig({ LINEAGE_TLS_KEY: '/etc/key.pem' }), /LINEAGE_TLS_CERT/)
  t.match(loadConfig({ LINEAGE_TLS_CERT: '/etc/cert.pem', LINEAGE_TLS_KEY: '/etc/key.pem' }), { tlsCertFile: '/etc/cert.pem', tlsKeyFile: '/etc/key.pem' })
})

t.test('an empty LINEAGE_HOST, LINEAGE_DATA_DIR, LINEAGE_ROLE or LINEAGE_LOG_LEVEL means the default, as an empty port or secret does', async (t) => {
  const c = loadConfig({ LINEAGE_HOST: '', LINEAGE_DATA_DIR: '', LINEAGE_ROLE: '', LINEAGE_LOG_LEVEL: '' })
  t.equal(c.role, 'all')
  t.equal(c.logLevel, 'info', 'an empty LINEAGE_LOG_LEVEL too')
  t.equal(loadConfig({ LINEAGE_ISSUER: 'https://id.example/' }).issuer, 'https://id.example/', 'the issuer is kept exactly: it is every token\'s iss')
  t.equal(c.host, '127.0.0.1', 'not every interface')
  t.equal(c.dataDir, loadConfig({}).dataDir, './.lineage, not the working directory')
})

t.test('an admin or SCIM token, or the Okta Authorization, that no request could present stops the start naming its variable', async (t) => {
  const token = 'ladm_0123456789abcdef'
  for (const [name, value] of [['LINEAGE_ADMIN_TOKEN', `${token}\n`], ['LINEAGE_ADMIN_TOKEN', `my admin ${token}`], ['LINEAGE_ADMIN_TOKEN', `${token}é`], ['LINEAGE_SCIM_TOKEN', `${token}\r\n`],
    ['LINEAGE_OKTA_AUTHORIZATION', `Bearer ${token}\n`], ['LINEAGE_OKTA_AUTHORIZATION', ` Bearer ${token}`]]) {
    t.throws(() => loadConfig({ [name]: value }), { name: 'ConfigError', message: new RegExp(`^${name}: .*trailing newline`) }, JSON.stringify(value))
  }
  t.match(loadConfig({ LINEAGE_ADMIN_TOKEN: `${token}~+/=`, LINEAGE_SCIM_TOKEN: token, LINEAGE_OKTA_AUTHORIZATION: `Bearer ${token}` }),
    { adminToken: `${token}~+/=`, scimToken: token, oktaAuthorization: `Bearer ${token}` })
})

t.test('an issuer with a query or fragment, which RFC 8414 forbids and the metadata URLs would swallow, stops the start naming LINEAGE_ISSUER', async (t) => {
  for (const value of ['https://id.example/?tenant=a', 'https://id.example/#x', 'https://id.example?']) {
    t.throws(() => loadConfig({ LINEAGE_ISSUER: value }), { name: 'ConfigError', message: /^LINEAGE_ISSUER: must have no query or fragment/ }, value)
  }
  t.equal(loadConfig({ LINEAGE_ISSUER: 'https://id.example/tenant-a' }).issuer, 'https://id.example/tenant-a', 'a path is an issuer\'s own')
})

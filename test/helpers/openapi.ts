import { readFileSync } from 'node:fs'
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import { parse } from 'yaml'

/** Where the spec lives: the repository root. */
export const specPath = new URL('../../openapi.yaml', import.meta.url)

const methods = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'] as const
// Every component schema is registered under this base, so `#/components/schemas/X` becomes an absolute id.
const base = 'https://lineage.invalid/openapi/components/schemas/'

type Json = any

/** A response as the test saw it. */
export interface Seen { status: number, body: unknown, headers: Headers }

/** What went wrong with one response, or undefined when it matches the spec. */
export type Problem = string | undefined

/** Rewrites local schema refs to the ids the components are registered under. */
function rebase (node: Json): Json {
  if (Array.isArray(node)) return node.map(rebase)
  if (typeof node !== 'object' || node === null) return node
  const out: Record<string, Json> = {}
  for (const [k, v] of Object.entries(node)) {
    out[k] = k === '$ref' && typeof v === 'string' && v.startsWith('#/components/schemas/')
      ? base + v.slice('#/components/schemas/'.length)
      : rebase(v)
  }
  return out
}

function pointer (doc: Json, ref: string): Json {
  if (!ref.startsWith('#/')) throw new Error(`only local refs are supported: ${ref}`)
  return ref.slice(2).split('/').reduce((node, key) => node?.[key.replace(/~1/g, '/').replace(/~0/g, '~')], doc)
}

function formatErrors (errors: ErrorObject[] | null | undefined): string {
  return (errors ?? []).map((e) => `${e.instancePath === '' ? '(body)' : e.instancePath} ${e.message ?? ''} ${JSON.stringify(e.params)}`).join('; ')
}

/**
 * The parsed `openapi.yaml` and a checker that holds real responses against it: the route
 * and status must be documented, the body must match the declared schema (ajv, JSON Schema
 * 2020-12, components registered for `$ref`), and every required header must be present and
 * match its schema. Remembers which operations were exercised.
 */
export class OpenApi {
  readonly doc: Json
  private readonly ajv: Ajv2020
  private readonly compiled = new Map<string, ValidateFunction>()
  /** `METHOD /template` of every operation a checked response came from. */
  readonly exercised = new Set<string>()

  constructor (text = readFileSync(specPath, 'utf8')) {
    this.doc = parse(text)
    this.ajv = new Ajv2020({ strict: true, strictTypes: false, strictTuples: false, strictRequired: false, allErrors: true })
    addFormats.default(this.ajv)
    // OpenAPI's own schema keywords: annotations for ajv.
    this.ajv.addVocabulary(['discriminator', 'example', 'xml', 'externalDocs'])
    for (const [name, schema] of Object.entries(this.doc.components?.schemas ?? {})) {
      this.ajv.addSchema(rebase(schema), base + name)
    }
  }

  /** Every documented operation as `METHOD /template`. */
  operations (): string[] {
    const out: string[] = []
    for (const [path, item] of Object.entries(this.doc.paths as Record<string, Json>)) {
      for (const m of methods) if (item[m] !== undefined) out.push(`${m.toUpperCase()} ${path}`)
    }
    return out.sort()
  }

  /** The documented path template that `path` (no query) falls under, or undefined. */
  template (path: string): string | undefined {
    const templates = Object.keys(this.doc.paths)
    if (templates.includes(path)) return path
    return templates.find((tpl) => new RegExp('^' + tpl.split(/\{[^}]+\}/).map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[^/]+') + '$').test(path))
  }

  /**
   * Compiles every schema the document holds (components, parameters, headers, request and
   * response bodies) under strict JSON Schema 2020-12, so a typo or a YAML slip (a stray key)
   * cannot hide in a schema that no response happens to reach.
   * @returns one line per schema that does not compile.
   */
  compileAll (): string[] {
    const problems: string[] = []
    const tryCompile = (where: string, schema: Json): void => {
      try { this.ajv.compile(rebase(schema)) } catch (err) { problems.push(`${where}: ${(err as Error).message}`) }
    }
    for (const name of Object.keys(this.doc.components?.schemas ?? {})) {
      try { this.ajv.getSchema(base + name) } catch (err) { problems.push(`components/schemas/${name}: ${(err as Error).message}`) }
    }
    const walk = (where: string, node: Json): void => {
      if (Array.isArray(node)) { node.forEach((n, i) => walk(`${where}/${i}`, n)); return }
      if (typeof node !== 'object' || node === null) return
      for (const [k, v] of Object.entries(node)) {
        if (k === 'schema' && typeof v === 'object') tryCompile(`${where}/schema`, v)
        else walk(`${where}/${k}`, v)
      }
    }
    walk('#/paths', this.doc.paths)
    walk('#/components/parameters', this.doc.components?.parameters)
    walk('#/components/headers', this.doc.components?.headers)
    walk('#/components/responses', this.doc.components?.responses)
    return problems
  }

  /** Validates `value` against component schema `name`. */
  validateSchema (name: string, value: unknown): Problem {
    const v = this.ajv.getSchema(base + name)
    if (v === undefined) return `no component schema ${name}`
    return v(value) ? undefined : formatErrors(v.errors)
  }

  private compile (key: string, schema: Json): ValidateFunction {
    let v = this.compiled.get(key)
    if (v === undefined) {
      v = this.ajv.compile(rebase(schema))
      this.compiled.set(key, v)
    }
    return v
  }

  /**
   * Checks one real response of `method` on the concrete `path` against the spec.
   * @returns a description of every mismatch, or undefined when it conforms.
   */
  check (method: string, path: string, res: Seen): Problem {
    const tpl = this.template(path.split('?')[0])
    if (tpl === undefined) return `undocumented path ${path}`
    const op = this.doc.paths[tpl][method.toLowerCase()]
    if (op === undefined) return `undocumented operation ${method} ${tpl}`
    const opKey = `${method.toUpperCase()} ${tpl}`
    let response = op.responses?.[String(res.status)]
    if (response === undefined) return `${opKey}: status ${res.status} is not documented (body ${JSON.stringify(res.body)})`
    this.exercised.add(opKey)
    if (typeof response.$ref === 'string') response = pointer(this.doc, response.$ref)

    const problems: string[] = []
    for (const [name, h0] of Object.entries(response.headers ?? {} as Record<string, Json>)) {
      const h = typeof (h0 as Json).$ref === 'string' ? pointer(this.doc, (h0 as Json).$ref) : h0 as Json
      const value = res.headers.get(name)
      if (value === null) {
        if (h.required === true) problems.push(`header ${name} is missing`)
        continue
      }
      if (h.schema !== undefined) {
        const v = this.compile(`${opKey} ${res.status} header ${name}`, h.schema)
        if (!v(value)) problems.push(`header ${name}: ${JSON.stringify(value)} ${formatErrors(v.errors)}`)
      }
    }

    const content = response.content as Record<string, Json> | undefined
    if (content === undefined) {
      if (res.body !== undefined && res.body !== '') problems.push(`no body is documented, got ${JSON.stringify(res.body)}`)
    } else {
      const type = (res.headers.get('content-type') ?? '').split(';')[0].trim()
      const media = content[type]
      if (media === undefined) {
        problems.push(`content type ${JSON.stringify(type)} is not documented (documented: ${Object.keys(content).join(', ')})`)
      } else if (media.schema !== undefined) {
        const v = this.compile(`${opKey} ${res.status} ${type}`, media.schema)
        if (!v(res.body)) problems.push(`body ${formatErrors(v.errors)}: ${JSON.stringify(res.body)}`)
      }
    }
    return problems.length === 0 ? undefined : `${opKey} ${res.status}: ${problems.join('; ')}`
  }
}

/**
 * Every `METHOD /template` an Express 5 app routes, nested routers included, with `:param`
 * written `{param}` as OpenAPI does. Middleware without a route is not listed.
 */
export function routesOf (app: { router: Json }): string[] {
  const out = new Set<string>()
  const walk = (stack: Json[], prefix: string): void => {
    for (const layer of stack) {
      if (layer.route !== undefined) {
        const path = prefix + String(layer.route.path).replace(/:([A-Za-z0-9_]+)/g, '{$1}')
        for (const m of Object.keys(layer.route.methods)) if (m !== '_all') out.add(`${m.toUpperCase()} ${path}`)
      } else if (Array.isArray(layer.handle?.stack)) {
        walk(layer.handle.stack, prefix + (layer.rawPath === '/' || layer.rawPath === undefined ? '' : String(layer.rawPath)))
      }
    }
  }
  walk(app.router.stack, '')
  return [...out].sort()
}

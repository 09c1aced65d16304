#!/usr/bin/env node
// The `lineage` command (package.json "bin"). Loads the TypeScript sources through tsx.
import { register } from 'tsx/esm/api'

register()
await import('../src/cli/main.ts')

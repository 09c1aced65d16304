import type { Obj } from './from-scope.js'
import type { Walk } from './walk.js'

// Classes as ranks: a text is of its strongest statement's.
export const read = 0
export const write = 1
export const ddl = 2
export const admin = 3

/** A statement kind's class, or a function that records its class and shapes and says whether its children run. */
export type Rule = number | ((body: Obj, w: Walk) => boolean | undefined)

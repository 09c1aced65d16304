import { parentPort } from 'node:worker_threads'
import { classify, fingerprint, loadClassifier } from './classify.js'
import type { LongJob, LongResult } from './classify-long.js'

// The thread behind `classifyLong`: one job at a time, in the order they came.
await loadClassifier()
const port = parentPort
if (port === null) throw new TypeError('classify-long-worker runs as a worker thread')
port.on('message', (job: LongJob) => {
  const result: LongResult = { id: job.id, c: classify(job.sql) }
  if (job.fingerprint) result.fingerprint = fingerprint(job.sql)
  port.postMessage(result)
})
